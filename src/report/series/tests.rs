use super::*;
use crate::context::Context;
use crate::detect::DetectOptions;
use crate::normalize::Tokens;

const HOUR: i64 = 3_600_000;

/// (ts, principal, source address, account).
type Row<'a> = (i64, &'a str, &'a str, Option<&'a str>);

fn frame(rows: &[Row]) -> DataFrame {
    let cat = |name: &str, values: Vec<Option<&str>>| {
        crate::frame::key_column(name, values).expect("codes")
    };
    DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        cat(c::PRINCIPAL, rows.iter().map(|r| Some(r.1)).collect()),
        cat(c::SOURCE_IP, rows.iter().map(|r| Some(r.2)).collect()),
        cat(c::TARGET, rows.iter().map(|r| r.3).collect()),
    ])
    .expect("frame")
}

/// The envelope's grid has a row per day some entity reached a new account, not per day of
/// the span: activity in 1990 and in 2098 makes two rows, not 40,000.
#[test]
fn the_envelope_grid_is_sized_by_active_days() {
    let (first, last) = (7_305, 47_000);
    let picked = (0..5).map(|i| vec![(first, 1 + i), (last, 10)]).collect();
    let peers = Peers { of: 5, picked };
    let env = envelope(peers, EntityKind::Principal).expect("envelope");
    assert_eq!(env.days.len(), 2);
    assert_eq!((env.days[0].0, env.days[1].0), (first, last));
    // Median of 1..=5 new on the first day, then 10 more each.
    assert_eq!((env.days[0].1, env.days[1].1), (3.0, 13.0));
}

/// The envelope's peers are every `step`-th entity of the top kind in name order, as if
/// every entity's first days were listed by name and sampled (how they were chosen before
/// only the sample was computed), and a charted entity of another kind gets its own.
#[test]
fn peers_are_an_even_sample_by_name() {
    let n = 2 * ENVELOPE_PEERS + 3;
    let rows: Vec<(i64, String, String)> = (0..n)
        .map(|i| (i as i64 * HOUR, format!("p{i}"), format!("C{}", i % 7)))
        .collect();
    let mut events = frame(
        &(rows.iter())
            .map(|r| (r.0, r.1.as_str(), "192.0.2.1", Some(r.2.as_str())))
            .collect::<Vec<_>>(),
    );
    let access = crate::frame::key_column(c::EVENT_TYPE, vec![Some("access"); n]);
    let keys = crate::frame::key_column(c::CREDENTIAL, vec![None::<&str>; n]);
    for added in [access, keys] {
        events.with_column(added.expect("column")).expect("added");
    }
    let (context, options, tokens) = (
        Context::default(),
        DetectOptions::default(),
        Tokens::default(),
    );
    let time = TimeParser::new(chrono_tz::UTC);
    let input = DetectInput::new(&events, &context, &options, &time, &[], &tokens);
    let (top, address) = (
        Entity::new(EntityKind::Principal, "p17"),
        Entity::new(EntityKind::SourceIp, "192.0.2.1"),
    );
    let (firsts, peers) =
        new_accounts(&input, &[&top, &address], Some(EntityKind::Principal)).expect("new");
    let (reduced, symbols) = input.reach().expect("reach").held().expect("held");
    let all = reduced.first_days(c::PRINCIPAL, symbols, None);
    assert_eq!(peers.of, n);
    let want: Vec<_> = all.values().step_by(3).cloned().collect();
    assert_eq!(peers.picked.len(), n.div_ceil(3));
    assert!(peers.picked == want, "another sample");
    assert_eq!(firsts[&EntityKind::Principal]["p17"], all["p17"]);
    let at_address = &firsts[&EntityKind::SourceIp]["192.0.2.1"];
    assert_eq!(at_address.iter().map(|d| d.1).sum::<u64>(), 7);
    assert_eq!(firsts[&EntityKind::Principal].len(), 1);
}

/// Events and distinct accounts per local day for each charted entity across chunks (rows
/// without an account count as events only), and the top entity's heat map in local time.
#[test]
fn daily_counts_events_accounts_and_local_hours() {
    // Alice's accounts of day 0 are in both chunks: C5 in one, C1 in both.
    let head = frame(&[
        (HOUR, "alice", "203.0.113.9", Some("C1")),
        (HOUR, "alice", "203.0.113.8", Some("C5")),
    ]);
    let tail = frame(&[
        (2 * HOUR, "alice", "203.0.113.9", Some("C1")),
        (23 * HOUR + HOUR / 2, "alice", "203.0.113.8", None),
        (DAY_MS + HOUR, "alice", "203.0.113.8", Some("C2")),
        (DAY_MS + 2 * HOUR, "bob", "203.0.113.9", Some("C3")),
    ]);
    let events = head.vstack(&tail).expect("vstack");
    let (context, options, tokens) = (
        Context::default(),
        DetectOptions::default(),
        Tokens::default(),
    );
    let time = TimeParser::new(chrono_tz::Europe::Berlin);
    let input = DetectInput::new(&events, &context, &options, &time, &[], &tokens);
    let alice = Entity::new(EntityKind::Principal, "alice");
    let address = Entity::new(EntityKind::SourceIp, "203.0.113.9");
    let absent = Entity::new(EntityKind::Principal, "nobody");
    // A network's rows are its addresses' (the frame stores no network column).
    let network = Entity::new(EntityKind::Network, "203.0.113.0/24");
    let other = Entity::new(EntityKind::Network, "198.51.100.0/24");
    let charted = [&alice, &address, &absent, &network, &other];
    let (days, heatmap) = daily(&input, &charted, Some(&alice)).expect("daily");
    // Berlin is an hour ahead of UTC in January: 23:30 UTC is 00:30 the next local day, in
    // the daily counts as on the heat map.
    assert_eq!(days[0], [(0, 3, 2), (1, 2, 1)]);
    assert_eq!(days[1], [(0, 2, 1), (1, 1, 1)]);
    assert!(days[2].is_empty());
    assert_eq!(days[3], [(0, 3, 2), (1, 3, 2)]);
    assert!(days[4].is_empty());
    let heatmap = heatmap.expect("heat map");
    assert_eq!(heatmap.cells, [(0, 2, 2), (0, 3, 1), (1, 0, 1), (1, 2, 1)]);
}

/// Differential: each charted entity's events and distinct accounts per local day, and the top
/// one's events per local hour, counted in one pass over the chunks, equal polars' group-bys of
/// its rows (what the pass replaced), for every kind (a network by its addresses) and an entity
/// with no row, in zones with and without a daylight-saving change inside the rows' weeks, with
/// the cold columns in the frame or beside it.
#[test]
fn daily_agrees_with_polars_group_bys() {
    use crate::frame::random;
    use crate::normalize::cold::IN_FRAME;
    let dir = tempfile::tempdir().expect("dir");
    let (context, options, tokens) = (
        Context::default(),
        DetectOptions::default(),
        Tokens::default(),
    );
    for seed in 0..4u64 {
        let events = random::events(seed, 3000);
        // Across Europe's change of clocks (2025-03-30 01:00 UTC): Berlin's days and hours are
        // not UTC's shifted by one throughout.
        let ts = i64s(&events, c::TS).expect("instants");
        let change = 1_743_296_400_000;
        assert!(ts.iter().any(|&t| t < change) && ts.iter().any(|&t| t > change + DAY_MS));
        let first = |column: &str| {
            let names = random::some_names(&events, column, seed as usize % 3);
            names.into_iter().next().expect("a name")
        };
        let charted = [
            Entity::new(EntityKind::Principal, first(c::PRINCIPAL)),
            Entity::new(EntityKind::SourceIp, first(c::SOURCE_IP)),
            Entity::new(EntityKind::Credential, first(c::CREDENTIAL)),
            Entity::new(EntityKind::Network, {
                let networks = random::some_networks(&events);
                networks.into_iter().next().expect("a network")
            }),
            Entity::new(EntityKind::Principal, "nobody"),
        ];
        // The top entity, the heat map's, is the first charted: of each kind in turn.
        let mut charted: Vec<&Entity> = charted.iter().collect();
        charted[..4].rotate_left(seed as usize % 4);
        let at = dir.path().join(seed.to_string());
        std::fs::create_dir(&at).expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&events, &at, &[700, 13, 251]);
        for zone in [
            chrono_tz::UTC,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
        ] {
            let time = TimeParser::new(zone);
            let top = Some(charted[0]);
            let (want, heat) = daily_by_polars(&events, &charted, top, &time).expect("polars");
            let active: usize = want.iter().map(Vec::len).sum();
            assert!(
                want[..4].iter().all(|d| !d.is_empty()),
                "seed {seed}: {want:?}"
            );
            assert!(active > 12, "seed {seed}: {want:?}");
            let heat = heat.expect("heat map").cells;
            for (way, frame, cold) in [("in", &events, &IN_FRAME), ("beside", &hot, &cold)] {
                let input = DetectInput::new(frame, &context, &options, &time, &[], &tokens)
                    .with_cold(cold);
                let (days, heatmap) = daily(&input, &charted, top).expect("daily");
                assert_eq!(days, want, "seed {seed}, {zone}, {way} the frame");
                let cells = heatmap.expect("heat map").cells;
                assert_eq!(cells, heat, "seed {seed}, {zone}, {way} the frame");
            }
        }
    }
}
