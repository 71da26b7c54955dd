//! Bulk account enumeration: one key, principal, address or /24 touching far more distinct
//! customer accounts than it should — in one night or slowly over months.
//!
//! Per entity the detector profiles distinct accounts per day, total reach, and how much of its
//! daily work is new accounts (`new_ratio` = distinct accounts over the export ÷ sum of daily
//! distinct accounts: ~1 for a scraper that keeps finding new accounts, ~1/days for a batch job that
//! touches the same accounts every night). It then asks three questions with robust statistics
//! (median and MAD, which one burst cannot poison): is today far above the entity's own history,
//! is its reach far above its peers', and does its reach grow linearly unlike its peers'? Sequential
//! walks through account numbers and customer tokens touching other customers are extra signals.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::DataFrame;
use rayon::prelude::*;

use super::activity::keep_top;
use super::reach::{Profile, Walk, counts_with};
use super::{
    DetectInput, Detection, Detector, Entity, EntityKind, Finding, evidence, volume_score,
};
use crate::error::Result;
use crate::normalize::columns::{is_internal, network_of};
use crate::normalize::schema::{DAY_MS, col as c};

pub struct Enumeration;

const NAME: &str = "enumeration";
/// A burst must reach this many accounts in a day and be this many times the entity's median day.
const BURST_MIN_ACCOUNTS: u64 = 100;
const BURST_FACTOR: f64 = 10.0;
/// Days of history needed before "above its own baseline" means anything.
const MIN_HISTORY_DAYS: usize = 7;
/// Peer comparison needs a group this large; reach this many times the peer median is abnormal.
const MIN_PEERS: usize = 5;
const PEER_FACTOR: f64 = 5.0;
/// Low and slow: mostly new accounts every day, a visible share of the customer base.
const LOW_SLOW_NEW_RATIO: f64 = 0.8;
const LOW_SLOW_SHARE: f64 = 0.05;
/// A walk step: the next account number is 1..=3 above the previous, within six hours.
const WALK_MAX_STEP: i64 = 3;
const WALK_MAX_GAP_MS: i64 = 6 * 3_600_000;
const WALK_MIN_STEPS: u64 = 20;
const WALK: Walk = Walk {
    max_step: WALK_MAX_STEP,
    max_gap_ms: WALK_MAX_GAP_MS,
};

/// Medians of a peer group.
#[derive(Debug, Default, Clone, Copy)]
struct Peers {
    members: usize,
    reach: f64,
    new_ratio: f64,
}

impl Detector for Enumeration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let mut out = Detection::default();
        let rows = input.access_rows()?;
        if rows.is_empty() {
            out.limitations.push(super::Limitation {
                detector: NAME,
                note:
                    "no access events with target_account: account enumeration could not be checked"
                        .into(),
            });
            return Ok(out);
        }
        let kinds = [
            EntityKind::Credential,
            EntityKind::Principal,
            EntityKind::Network,
            EntityKind::SourceIp,
        ];
        // The kinds are independent, and each one's grouping step runs on one thread.
        let all = kinds
            .par_iter()
            .map(|kind| rows.profiles(input.events, kind.column(), WALK, WALK_MIN_STEPS))
            .collect::<Result<Vec<_>>>()?;
        // Principals that are themselves customer accounts (token subjects).
        let customers: BTreeSet<String> = kinds
            .iter()
            .zip(&all)
            .filter(|(kind, _)| **kind == EntityKind::Principal)
            .flat_map(|(_, profiles)| profiles.iter())
            .filter(|(_, p)| p.is_account)
            .map(|(id, _)| id.clone())
            .collect();
        let base = customers.len().max(1) as f64;
        let mut flagged_networks = BTreeSet::new();
        for (kind, profiles) in kinds.into_iter().zip(all) {
            let mut groups: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
            for (id, p) in &profiles {
                let g = groups
                    .entry(peer_group(input, kind, id, &customers))
                    .or_default();
                g.0.push(p.total);
                g.1.push((p.new_ratio() * 1000.0).round() as u64);
            }
            let peers: BTreeMap<String, Peers> = groups
                .into_iter()
                .map(|(g, (mut reach, mut ratio))| {
                    reach.sort_unstable();
                    ratio.sort_unstable();
                    let peers = Peers {
                        members: reach.len(),
                        reach: median(&reach),
                        new_ratio: median(&ratio) / 1000.0,
                    };
                    (g, peers)
                })
                .collect();
            for (id, p) in &profiles {
                if kind == EntityKind::SourceIp
                    && network_of(id).is_some_and(|n| flagged_networks.contains(&n))
                {
                    continue;
                }
                let group = peer_group(input, kind, id, &customers);
                let ctx = Judge {
                    input,
                    kind,
                    id,
                    p,
                    base,
                    group: &group,
                    peers: peers.get(&group).copied().unwrap_or_default(),
                    is_customer: customers.contains(id),
                };
                let found = ctx.judge();
                if kind == EntityKind::Network && !found.is_empty() {
                    flagged_networks.insert(id.clone());
                }
                out.findings.extend(found);
            }
        }
        link_related(input.events, &mut out.findings)?;
        Ok(out)
    }
}

/// Names the addresses behind a flagged key, principal or network (and the principals behind a
/// flagged address), so the ranking can group them into one incident.
fn link_related(events: &DataFrame, findings: &mut [Finding]) -> Result<()> {
    let mut flagged: BTreeMap<EntityKind, BTreeSet<String>> = BTreeMap::new();
    for f in findings.iter() {
        flagged
            .entry(f.entity.kind)
            .or_default()
            .insert(f.entity.id.clone());
    }
    let other = |kind| match kind {
        EntityKind::SourceIp => (c::PRINCIPAL, EntityKind::Principal),
        _ => (c::SOURCE_IP, EntityKind::SourceIp),
    };
    // Each kind is one pass over the access rows: in parallel, 0.19 -> 0.1 s at 10M events.
    let counted = flagged
        .into_par_iter()
        .map(|(kind, ids)| {
            let tops = counts_with(events, kind.column(), &ids, other(kind).0)?;
            Ok((kind, tops))
        })
        .collect::<Result<Vec<_>>>()?;
    for (kind, mut tops) in counted {
        let other_kind = other(kind).1;
        for f in findings.iter_mut().filter(|f| f.entity.kind == kind) {
            if let Some(top) = tops.get_mut(&f.entity.id) {
                keep_top(top);
                f.related = top
                    .iter()
                    .map(|(v, _)| Entity::new(other_kind, v.clone()))
                    .collect();
            }
        }
    }
    Ok(())
}

/// Peers: same department for employees, customers with customers, services with services,
/// credentials of the same kind, addresses with addresses, networks with networks.
fn peer_group(
    input: &DetectInput,
    kind: EntityKind,
    id: &str,
    customers: &BTreeSet<String>,
) -> String {
    match kind {
        EntityKind::Principal => match input.context.roster.get(id) {
            Some(e) => format!("employees of {}", e.department),
            None if customers.contains(id) => "customers".into(),
            None => "services and unlisted principals".into(),
        },
        EntityKind::Credential => match input.context.credentials.get(id) {
            Some(k) => format!("{} credentials", k.kind),
            None => "credentials not in the inventory".into(),
        },
        EntityKind::SourceIp => match id.parse::<std::net::IpAddr>() {
            Ok(addr) if is_internal(&addr) => "internal source addresses".into(),
            _ => "external source addresses".into(),
        },
        EntityKind::Network => "source networks".into(),
    }
}

fn median(sorted: &[u64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
    }
}

/// Median and median absolute deviation.
fn median_mad(values: &[u64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_unstable();
    let m = median(&v);
    let mut dev: Vec<u64> = v
        .iter()
        .map(|x| (*x as f64 - m).abs().round() as u64)
        .collect();
    dev.sort_unstable();
    (m, median(&dev))
}

struct Judge<'a> {
    input: &'a DetectInput<'a>,
    kind: EntityKind,
    id: &'a str,
    p: &'a Profile,
    base: f64,
    group: &'a str,
    peers: Peers,
    is_customer: bool,
}

impl Judge<'_> {
    fn judge(&self) -> Vec<Finding> {
        let p = self.p;
        let mut out = Vec::new();
        let share = p.total as f64 / self.base;
        let new_ratio = p.new_ratio();
        let Peers {
            members,
            reach: peer_median,
            new_ratio: peer_ratio,
        } = self.peers;
        let has_peers = members >= MIN_PEERS;
        let above_peers = has_peers
            && p.total as f64 >= PEER_FACTOR * peer_median.max(1.0)
            && p.total as f64 - peer_median >= 100.0;

        if let Some(&(day, max)) = p.days.iter().max_by_key(|d| (d.1, std::cmp::Reverse(d.0))) {
            let others: Vec<u64> = p.days.iter().filter(|d| d.0 != day).map(|d| d.1).collect();
            let (med, mad) = median_mad(&others);
            if others.len() >= MIN_HISTORY_DAYS
                && max >= BURST_MIN_ACCOUNTS
                && max as f64 >= BURST_FACTOR * med.max(1.0)
                && max as f64 >= med + BURST_FACTOR * (1.4826 * mad).max(1.0)
            {
                let reason = format!(
                    "{max} distinct accounts on {} (up to {} in one hour) against a median of {med:.0} a day over {} other active day(s)",
                    self.input.time.format_date(day * DAY_MS),
                    p.peak_hour,
                    others.len()
                );
                let mut f = self.finding(
                    "burst_over_own_baseline",
                    reason,
                    volume_score(45.0, 30.0, max),
                );
                f.marks.push((
                    format!("burst {}", self.input.time.format_date(day * DAY_MS)),
                    day * DAY_MS,
                ));
                f.evidence.insert("burst_day_accounts".into(), max.into());
                f.evidence
                    .insert("peak_hour_accounts".into(), p.peak_hour.into());
                f.evidence.insert("baseline_median".into(), med.into());
                f.evidence.insert("baseline_mad".into(), mad.into());
                out.push(f);
            }
        }
        if above_peers {
            let reason = format!(
                "reached {} distinct accounts ({:.1}% of customers), {:.0}× the median of its {} peers ({})",
                p.total,
                share * 100.0,
                p.total as f64 / peer_median.max(1.0),
                members,
                self.group
            );
            out.push(self.finding(
                "reach_above_peers",
                reason,
                volume_score(30.0, 30.0, p.total),
            ));
        }
        let steady = p.active_days as usize >= MIN_HISTORY_DAYS
            && new_ratio >= LOW_SLOW_NEW_RATIO
            && share >= LOW_SLOW_SHARE;
        // Support agents keep meeting new customers too; they are only abnormal if their reach or
        // their appetite for new accounts stands out from their own peers'.
        let unlike_peers = !has_peers
            || p.total as f64 >= 3.0 * peer_median.max(1.0)
            || new_ratio >= peer_ratio + 0.3;
        if steady && p.total >= BURST_MIN_ACCOUNTS && unlike_peers {
            let reason = format!(
                "low and slow: {} distinct accounts ({:.1}% of customers) over {} active day(s), {:.0}% of daily touches were accounts never seen before (a batch job re-touches the same ones)",
                p.total,
                share * 100.0,
                p.active_days,
                new_ratio * 100.0
            );
            out.push(self.finding(
                "low_and_slow_reach",
                reason,
                volume_score(40.0, 35.0, p.total),
            ));
        }
        if p.walk_steps >= WALK_MIN_STEPS && p.walk_steps as f64 >= 0.3 * p.total as f64 {
            let reason = format!(
                "sequential walk: {} account(s) reached by stepping to the next account number within {} h, of {} distinct accounts",
                p.walk_steps,
                WALK_MAX_GAP_MS / 3_600_000,
                p.total
            );
            out.push(self.finding(
                "sequential_walk",
                reason,
                volume_score(30.0, 30.0, p.walk_steps),
            ));
        }
        if self.kind == EntityKind::Principal && self.is_customer && p.others >= 1 {
            let reason = format!(
                "customer token subject touched {} account(s) other than its own",
                p.others
            );
            out.push(self.finding(
                "customer_touches_other_accounts",
                reason,
                volume_score(30.0, 30.0, p.others),
            ));
        }
        for f in &mut out {
            f.evidence.insert(
                "share_of_customers".into(),
                ((share * 10_000.0).round() / 10_000.0).into(),
            );
            f.evidence.insert(
                "new_account_ratio".into(),
                ((new_ratio * 1000.0).round() / 1000.0).into(),
            );
            f.evidence
                .insert("active_days".into(), p.active_days.into());
            f.evidence.insert("peer_group".into(), self.group.into());
            f.evidence
                .insert("peer_median_reach".into(), peer_median.into());
            f.evidence.insert("peers".into(), members.into());
        }
        out
    }

    fn finding(&self, code: &'static str, reason: String, score: f64) -> Finding {
        let first = self.p.days.first().map(|d| d.0 * DAY_MS);
        let last = self.p.days.last().map(|d| (d.0 + 1) * DAY_MS - 1);
        let mut techniques = vec!["T1087", "T1213"];
        if code == "customer_touches_other_accounts" {
            techniques.push("T1078");
        }
        Finding {
            detector: NAME,
            entity: Entity::new(self.kind, self.id),
            code,
            reason,
            score,
            first_seen: first,
            last_seen: last,
            events: self.p.events,
            distinct_accounts: self.p.total,
            marks: vec![],
            related: vec![],
            techniques,
            evidence: evidence([("distinct_accounts", self.p.total.into())]),
        }
    }
}
