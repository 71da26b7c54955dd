//! Random event frames for the differential tests of the hand-written passes over the frame
//! (each against the polars query it replaced). Rows come in runs, as logs do (one client paging
//! under one key from one address), with every column null somewhere, every cold column present,
//! several event types, and instants about four days a thousand rows apart from 2025-03-20, so
//! that three thousand cross Europe's change of clocks on 2025-03-30.

use std::collections::BTreeSet;

use polars::prelude::*;
use rand::{Rng, SeedableRng};

use super::key_column;
use crate::normalize::columns::network_of;
use crate::normalize::schema::{DAY_MS, col as c};

/// 2025-03-20 00:00 UTC.
const START: i64 = 1_742_428_800_000;

/// `n` rows from `seed`, in runs of 1 to 40 rows of one actor, instants mostly rising.
pub(crate) fn events(seed: u64, n: usize) -> DataFrame {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<Row> = Vec::with_capacity(n);
    let mut ts = START;
    while rows.len() < n {
        let actor = Row::actor(&mut rng);
        for _ in 0..rng.random_range(1..=40).min(n - rows.len()) {
            ts += rng.random_range(0..DAY_MS / 120);
            // A few rows out of order, as merged files have them.
            let at = match rng.random_range(0..30) {
                0 => ts - rng.random_range(0..3 * DAY_MS),
                _ => ts,
            };
            rows.push(actor.step(&mut rng, at));
        }
    }
    frame(&rows)
}

#[derive(Clone)]
struct Row {
    ts: i64,
    kind: &'static str,
    principal: Option<String>,
    source: Option<String>,
    key: Option<String>,
    target: Option<String>,
    action: Option<String>,
    agent: Option<String>,
    token: Option<u32>,
}

impl Row {
    fn actor(rng: &mut impl Rng) -> Row {
        let principal = (rng.random_range(0..12) > 0).then(|| match rng.random_range(0..3) {
            0 => format!("C{:04}", rng.random_range(0..150)),
            _ => format!("staff{}", rng.random_range(0..12)),
        });
        // Public /24s and /64s, and an internal range that has no network.
        let source = (rng.random_range(0..10) > 0).then(|| match rng.random_range(0..6) {
            0 => format!(
                "2001:db8:{}::{}",
                rng.random_range(0..2),
                rng.random_range(1..9)
            ),
            1 => format!("10.0.0.{}", rng.random_range(1..30)),
            _ => format!(
                "203.0.{}.{}",
                rng.random_range(0..4),
                rng.random_range(1..30)
            ),
        });
        let key = (rng.random_range(0..5) > 0).then(|| format!("key-{}", rng.random_range(0..6)));
        let agent =
            (rng.random_range(0..8) > 0).then(|| format!("client/{}", rng.random_range(0..5)));
        Row {
            ts: 0,
            kind: ["access", "access", "access", "login", "token_issued"][rng.random_range(0..5)],
            principal,
            source,
            key,
            target: None,
            action: None,
            agent,
            token: None,
        }
    }

    /// One more row of this actor at `ts`: the account and endpoint change within a run.
    fn step(&self, rng: &mut impl Rng, ts: i64) -> Row {
        let mut row = self.clone();
        row.ts = ts;
        row.target =
            (rng.random_range(0..12) > 0).then(|| format!("C{:04}", rng.random_range(0..400)));
        row.action =
            (rng.random_range(0..10) > 0).then(|| format!("GET /api/{}", rng.random_range(0..9)));
        row.token = (rng.random_range(0..3) > 0).then(|| rng.random_range(0..500));
        row
    }
}

fn frame(rows: &[Row]) -> DataFrame {
    let keys = |name: &str, of: fn(&Row) -> Option<String>| {
        key_column(name, rows.iter().map(of).collect::<Vec<_>>()).expect("key column")
    };
    let n = rows.len();
    let kinds: Vec<Option<String>> = rows.iter().map(|r| Some(r.kind.to_string())).collect();
    DataFrame::new(
        n,
        vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.ts).collect::<Vec<_>>()),
            key_column(c::EVENT_TYPE, kinds).expect("event type"),
            keys(c::PRINCIPAL, |r| r.principal.clone()),
            keys(c::SOURCE_IP, |r| r.source.clone()),
            keys(c::CREDENTIAL, |r| r.key.clone()),
            keys(c::TARGET, |r| r.target.clone()),
            keys(c::ACTION, |r| r.action.clone()),
            keys(c::USER_AGENT, |r| r.agent.clone()),
            Column::new(
                c::FILE.into(),
                (0..n as u32).map(|i| i / 500).collect::<Vec<_>>(),
            ),
            Column::new(c::LINE.into(), (1..=n as u64).collect::<Vec<_>>()),
            Column::new(
                c::TOKEN.into(),
                rows.iter().map(|r| r.token).collect::<Vec<_>>(),
            ),
        ],
    )
    .expect("frame")
}

/// Every third distinct name of column `name` from `offset` (nulls left out): a sample of the
/// entities a pass may be asked about.
pub(crate) fn some_names(events: &DataFrame, name: &str, offset: usize) -> BTreeSet<String> {
    let all: BTreeSet<String> = (super::strs(events, name).expect("names").into_iter())
        .filter(|n| !n.is_empty())
        .collect();
    all.into_iter().skip(offset).step_by(3).collect()
}

/// Every other network of the addresses (internal ones have none).
pub(crate) fn some_networks(events: &DataFrame) -> BTreeSet<String> {
    let all: BTreeSet<String> = (super::strs(events, c::SOURCE_IP).expect("addresses").iter())
        .filter_map(|ip| network_of(ip))
        .collect();
    all.into_iter().step_by(2).collect()
}
