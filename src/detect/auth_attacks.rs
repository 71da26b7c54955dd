//! Attacks on the login itself, from the login events any authentication log has: one address
//! trying many user names that do not exist (username enumeration, T1589.001 / T1110), few
//! attempts on each of many users (password spraying, T1110.003), a storm of failures on one user
//! (brute force, T1110.001) — and the success that sometimes follows it, the headline — and one
//! principal logging into far more hosts than its peers (lateral fan-out, T1021).
//!
//! Every rule has a floor, so a small log still shows its one attacker, and a bound relative to
//! the data (the median and MAD of the same count over every address, or the peers' median), so
//! a large log of ordinary logins does not raise a row per office.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::activity::summarize;
use super::enumeration::median_mad;
use super::{DetectInput, Detection, Detector, Entity, EntityKind, Finding, volume_score};
use crate::error::Result;
use crate::normalize::schema::{HOUR_MS, col as c};

pub struct AuthAttacks;

const NAME: &str = "auth_attacks";
/// The action readers give a login for a user name that does not exist (`docs/profiles.md`).
const INVALID_USER: &str = "sshd:invalid_user";
/// Distinct non-existent user names one address must try.
const MIN_INVALID_USERS: u64 = 5;
/// Spraying: distinct users failed, at most this many attempts each, success below this share.
const MIN_SPRAYED_USERS: u64 = 10;
const MAX_ATTEMPTS_PER_USER: f64 = 3.0;
const MAX_SPRAY_SUCCESS: f64 = 0.1;
/// Brute force: at least this many failures on one user, at this rate per hour of the address's
/// failing span (a laptop retrying three times a day for weeks is not a storm).
const MIN_STORM_FAILURES: u64 = 20;
const MIN_STORM_RATE: f64 = 10.0;
/// Every count must also stand this many robust deviations above the median over addresses.
const ROBUST_FACTOR: f64 = 10.0;
/// Fan-out: hosts this many times the peers' median, and this many more, among at least 5 peers.
const FANOUT_FACTOR: f64 = 5.0;
const FANOUT_MARGIN: f64 = 10.0;
const MIN_PEERS: usize = 5;

impl Detector for AuthAttacks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let mut out = Detection::default();
        let logins = input
            .events
            .clone()
            .lazy()
            .filter(col(c::EVENT_TYPE).eq(lit("login")));
        let failed = summarize(logins.clone().filter(col(c::SUCCESS).not()), c::SOURCE_IP)?;
        if failed.is_empty() && input.context.roster.is_empty() {
            return Ok(out);
        }
        let ok = summarize(logins.clone().filter(col(c::SUCCESS)), c::SOURCE_IP)?;
        let invalid = summarize(
            logins
                .clone()
                .filter(col(c::SUCCESS).not())
                .filter(col(c::ACTION).eq(lit(INVALID_USER))),
            c::SOURCE_IP,
        )?;
        let bound = |values: Vec<u64>| {
            let (med, mad) = median_mad(&values);
            move |n: u64| n as f64 >= med + ROBUST_FACTOR * (1.4826 * mad).max(1.0)
        };
        let above_fails = bound(failed.values().map(|a| a.events).collect());
        let above_users = bound(failed.values().map(|a| a.distinct_principals).collect());
        for (ip, fails) in &failed {
            let oks = ok.get(ip);
            let names = invalid.get(ip).map_or(0, |a| a.distinct_principals);
            let entity = Entity::new(EntityKind::SourceIp, ip.clone());
            if names >= MIN_INVALID_USERS && above_users(fails.distinct_principals) {
                let reason = format!(
                    "username enumeration: {names} user name(s) that do not exist tried from {ip} ({} failed logins on {} distinct users), first {}",
                    fails.events,
                    fails.distinct_principals,
                    input.time.format(fails.first)
                );
                let score = volume_score(40.0, 30.0, names);
                out.findings.push(tag(
                    fails.finding(
                        input,
                        NAME,
                        entity.clone(),
                        "username_enumeration",
                        reason,
                        score,
                    ),
                    &["T1589.001", "T1110"],
                ));
            }
            let users = fails.distinct_principals.max(1);
            let successes = oks.map_or(0, |a| a.events);
            let success_share = successes as f64 / (successes + fails.events) as f64;
            if users >= MIN_SPRAYED_USERS
                && fails.events as f64 / users as f64 <= MAX_ATTEMPTS_PER_USER
                && success_share < MAX_SPRAY_SUCCESS
                && above_users(users)
            {
                let reason = format!(
                    "password spraying: {} failed logins over {users} distinct users from {ip} ({:.1} per user, {successes} success(es))",
                    fails.events,
                    fails.events as f64 / users as f64
                );
                let score = volume_score(45.0, 30.0, users);
                out.findings.push(tag(
                    fails.finding(
                        input,
                        NAME,
                        entity.clone(),
                        "password_spraying",
                        reason,
                        score,
                    ),
                    &["T1110.003"],
                ));
            }
            // The storm is on one user: the address's most tried one (an enumeration run beside
            // it does not dilute it).
            let span_hours = ((fails.last - fails.first) as f64 / HOUR_MS as f64).max(1.0);
            let (target, on_target) = fails
                .top_principals
                .first()
                .map_or(("?", 0), |p| (p.0.as_str(), p.1));
            if on_target >= MIN_STORM_FAILURES
                && on_target as f64 / span_hours >= MIN_STORM_RATE
                && above_fails(on_target)
            {
                let after = oks.filter(|a| a.last > fails.first);
                let (code, score, tail) = match after {
                    Some(a) => (
                        "brute_force_then_success",
                        volume_score(75.0, 20.0, on_target),
                        format!(
                            "; then {} successful login(s), the last {}",
                            a.events,
                            input.time.format(a.last)
                        ),
                    ),
                    None => (
                        "brute_force",
                        volume_score(45.0, 30.0, on_target),
                        String::new(),
                    ),
                };
                let reason = format!(
                    "brute force: {on_target} failed logins on {target} from {ip} within {span_hours:.1} h{tail}"
                );
                let mut f = fails.finding(input, NAME, entity.clone(), code, reason, score);
                f.related.push(Entity::new(EntityKind::Principal, target));
                out.findings.push(tag(f, &["T1110.001"]));
            }
        }
        self.fan_out(input, logins, &mut out)?;
        Ok(out)
    }
}

impl AuthAttacks {
    /// Principals whose successful logins reach far more distinct hosts than their peers'.
    fn fan_out(&self, input: &DetectInput, logins: LazyFrame, out: &mut Detection) -> Result<()> {
        let by_user = summarize(
            logins.filter(col(c::SUCCESS).and(col(c::TARGET).is_not_null())),
            c::PRINCIPAL,
        )?;
        let group = |id: &str| {
            input.context.roster.get(id).map_or_else(
                || "users".to_string(),
                |e| format!("employees of {}", e.department),
            )
        };
        let mut peers: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (id, a) in &by_user {
            peers
                .entry(group(id))
                .or_default()
                .push(a.distinct_accounts);
        }
        for (id, a) in &by_user {
            let name = group(id);
            let Some(hosts) = peers.get(&name) else {
                continue;
            };
            if hosts.len() < MIN_PEERS {
                continue;
            }
            let (median, _) = median_mad(hosts);
            let n = a.distinct_accounts as f64;
            if n >= FANOUT_FACTOR * median.max(1.0) && n - median >= FANOUT_MARGIN {
                let reason = format!(
                    "host fan-out: logged into {} distinct hosts, {:.0}× the median of its {} peers ({name})",
                    a.distinct_accounts,
                    n / median.max(1.0),
                    hosts.len()
                );
                let entity = Entity::new(EntityKind::Principal, id.clone());
                let score = volume_score(40.0, 30.0, a.distinct_accounts);
                out.findings.push(tag(
                    a.finding(input, NAME, entity, "host_fan_out", reason, score),
                    &["T1021"],
                ));
            }
        }
        Ok(())
    }
}

fn tag(mut f: Finding, techniques: &[&'static str]) -> Finding {
    f.techniques.extend_from_slice(techniques);
    f
}
