//! Attacks on the login itself, from the login events any authentication log has: one address
//! trying many user names that do not exist (username enumeration, T1589.001 / T1110), few
//! attempts on each of many users (password spraying, T1110.003), a storm of failures on one user
//! (brute force, T1110.001) — and the success that sometimes follows it, the headline — and one
//! principal logging into far more hosts than its peers (lateral fan-out, T1021).
//!
//! Every rule has a floor, so a small log still shows its one attacker, and a bound relative to
//! the data (the median and MAD of the same count over every address, or the peers' median), so
//! a large log of ordinary logins does not raise a row per office.

use std::collections::{BTreeMap, HashSet};

use polars::prelude::*;

use super::activity::{self, summarize};
use super::enumeration::median_mad;
use super::{Counted, DetectInput, Detection, Detector, Entity, EntityKind, Finding, volume_score};
use crate::error::{FrameContext, Result};
use crate::frame::{NULL, codes, dictionary, key_series, strs, u64s};
use crate::normalize::profile::{INVALID_USER, NOTICE};
use crate::normalize::schema::{HOUR_MS, col as c};

pub struct AuthAttacks;

const NAME: &str = "auth_attacks";
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
/// Addresses with failed logins needed before the robust bound applies.
const MIN_ADDRESSES: usize = 10;
/// Fan-out: hosts this many times the peers' median, and this many more, among at least 5 peers,
/// and fewer than 5 peers reaching half as far.
const FANOUT_FACTOR: f64 = 5.0;
const FANOUT_MARGIN: f64 = 10.0;
const MIN_PEERS: usize = 5;

impl Detector for AuthAttacks {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Its failed logins' working set (0.40 GB at 300.15M events) beside offboarding's set a
    /// big run's detector peak with them, so it runs last, alone (see [`super::run`]).
    fn wave(&self) -> usize {
        3
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let mut out = Detection::default();
        // One cheap count per address over every failed login first; the full summaries
        // (evidence, first event, top users) only for the few addresses that pass a floor.
        // Summarising every address cost a second of the 10M-event run.
        // The address waits beside the frame: read for the failed logins alone.
        let failed = input.present_rows_of_types(
            LOGIN,
            col(c::SUCCESS).not(),
            c::SOURCE_IP,
            &[c::SOURCE_IP, c::PRINCIPAL, c::ACTION, c::SUCCESS],
        )?;
        let counts = per_address(without_repeated_notices(failed)?.lazy())?;
        let above_fails = bound(counts.values().map(|n| n.top_failures).collect());
        let above_users = bound(counts.values().map(|n| n.failed_users).collect());
        let candidates: Vec<String> = counts
            .iter()
            .filter(|(_, n)| {
                n.invalid_names >= MIN_INVALID_USERS
                    || n.failed_users >= MIN_SPRAYED_USERS
                    || n.top_failures >= MIN_STORM_FAILURES
            })
            .map(|(ip, _)| ip.clone())
            .collect();
        if !candidates.is_empty() {
            let mut wanted = activity::columns(c::SOURCE_IP);
            wanted.push(c::ACTION);
            // The candidates' rows found by their addresses first, then the columns of their
            // activity read for those rows alone (not for every login).
            let logins = (LOGIN, lit(true));
            let at = input.rows_of_types_with(logins, c::SOURCE_IP, &candidates, &wanted)?;
            let at = without_repeated_notices(at)?.lazy();
            self.attacks(input, at, &counts, &above_fails, &above_users, &mut out)?;
        }
        self.fan_out(input, &mut out)?;
        Ok(out)
    }
}

/// The event type every question here asks of: its rows are found among the chunks that hold
/// it alone (a gateway's access files hold none).
const LOGIN: &[&str] = &["login"];

/// `logins` without the notice lines ([`NOTICE`]) of addresses that have failed logins of
/// another kind: sshd logs one attempt with a password as `Invalid user X` or PAM's
/// `authentication failure` *and* `Failed password for …`, so counting both told twice (three
/// times for a user that does not exist) how often the address tried. An address whose only
/// failures are notices (keys only: no `Failed password` line) keeps them.
fn without_repeated_notices(logins: DataFrame) -> Result<DataFrame> {
    // On dictionary codes: a log under a long brute force has millions of failed logins, and a
    // string per row for the action and the address would be hundreds of MB.
    let (actions, ips) = (codes(&logins, c::ACTION)?, codes(&logins, c::SOURCE_IP)?);
    let dict = dictionary();
    let mut distinct = actions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let notices: HashSet<u32> = (distinct.into_iter())
        .filter(|&a| a != NULL && dict.name(a).is_some_and(|name| name.contains(NOTICE)))
        .collect();
    if notices.is_empty() {
        return Ok(logins);
    }
    let success = logins
        .column(c::SUCCESS)
        .and_then(|s| s.bool().cloned())
        .stage("reading outcomes")?;
    let failed = success.iter().map(|ok| ok != Some(true));
    let attempted: HashSet<u32> = (actions.iter().zip(&ips).zip(failed))
        .filter(|((action, _), failed)| *failed && !notices.contains(action))
        .map(|((_, &ip), _)| ip)
        .collect();
    let keep: BooleanChunked = (actions.iter().zip(&ips))
        .map(|(action, ip)| !notices.contains(action) || !attempted.contains(ip))
        .collect();
    logins.filter(&keep).stage("dropping repeated notices")
}

/// Per-address counts over all failed logins, for the floors and the robust bounds.
#[derive(Default)]
struct Counts {
    failed_users: u64,
    /// Distinct non-existent names tried, or attempts where the source hides the name.
    invalid_names: u64,
    top_failures: u64,
    /// Failed logins on user names that exist (none of theirs marked [`INVALID_USER`]).
    real_failures: u64,
}

/// `failed`: address, principal and action of each failed login from an address.
fn per_address(failed: LazyFrame) -> Result<BTreeMap<String, Counts>> {
    // Each source names its own marker (`sshd:invalid_user`, `okta:invalid_user`, …): find
    // which of the few distinct actions of failed logins end with it.
    let actions = failed
        .clone()
        .select([col(c::ACTION).unique()])
        .collect()
        .stage("actions of failed logins")?;
    let invalid: Vec<String> = strs(&actions, c::ACTION)?
        .into_iter()
        .filter(|a| {
            a.rsplit_once(':')
                .is_some_and(|(_, end)| end == INVALID_USER)
        })
        .collect();
    let per_user = failed
        .clone()
        .group_by([col(c::SOURCE_IP), col(c::PRINCIPAL)])
        .agg([
            len().cast(DataType::UInt64).alias("n"),
            col(c::ACTION)
                .is_in(lit(key_series("action", invalid)?).implode(false), false)
                .any(true)
                .alias("invalid"),
        ])
        .group_by([col(c::SOURCE_IP)])
        .agg([
            len().cast(DataType::UInt64).alias("users"),
            // A source that hides the name it was given (CloudTrail) leaves one nameless
            // group: each of its attempts is a guess of its own.
            when(col("invalid"))
                .then(
                    when(col(c::PRINCIPAL).is_null())
                        .then(col("n"))
                        .otherwise(lit(1u64)),
                )
                .otherwise(lit(0u64))
                .sum()
                .alias("names"),
            col("n").max().alias("top"),
            when(col("invalid"))
                .then(lit(0u64))
                .otherwise(col("n"))
                .sum()
                .alias("real"),
        ])
        .collect()
        .stage("failed logins per address")?;
    let ips = strs(&per_user, c::SOURCE_IP)?;
    let (users, names, top, real) = (
        u64s(&per_user, "users")?,
        u64s(&per_user, "names")?,
        u64s(&per_user, "top")?,
        u64s(&per_user, "real")?,
    );
    Ok((ips.into_iter().zip(users).zip(names).zip(top).zip(real))
        .map(
            |((((ip, failed_users), invalid_names), top_failures), real_failures)| {
                let counts = Counts {
                    failed_users,
                    invalid_names,
                    top_failures,
                    real_failures,
                };
                (ip, counts)
            },
        )
        .collect())
}

/// "At least 10 robust deviations above the median" of `values` — once there are enough of them
/// for a median to mean something; among a handful of addresses (a small server's log, where
/// the attacker is one of three) the attacker is the median's own outlier, and the floors decide.
fn bound(values: Vec<u64>) -> impl Fn(u64) -> bool {
    let (med, mad) = median_mad(&values);
    let enough = values.len() >= MIN_ADDRESSES;
    move |n: u64| !enough || n as f64 >= med + ROBUST_FACTOR * (1.4826 * mad).max(1.0)
}

impl AuthAttacks {
    /// The address rules, over the logins of the candidate addresses.
    fn attacks(
        &self,
        input: &DetectInput,
        logins: LazyFrame,
        counts: &BTreeMap<String, Counts>,
        above_fails: &dyn Fn(u64) -> bool,
        above_users: &dyn Fn(u64) -> bool,
        out: &mut Detection,
    ) -> Result<()> {
        let failed = summarize(
            logins.clone().filter(col(c::SUCCESS).not()),
            c::SOURCE_IP,
            input,
        )?;
        let ok = summarize(logins.filter(col(c::SUCCESS)), c::SOURCE_IP, input)?;
        for (ip, fails) in &failed {
            let oks = ok.get(ip);
            let names = counts.get(ip).map_or(0, |n| n.invalid_names);
            let entity = Entity::new(EntityKind::SourceIp, ip.clone());
            // What an address's attack reaches is user names, not the hosts it logged into.
            let finding = |code, reason, score, techniques: &[&'static str]| {
                let mut f = fails.finding(input, NAME, entity.clone(), code, reason, score);
                f.distinct_accounts = fails.distinct_principals.max(names);
                f.counts = Counted::UserNames;
                tag(f, techniques)
            };
            // A shared egress (an office NAT) collects its users' typos over a month; it is
            // told apart by the real users who log in from it, more than the names it got wrong.
            let real_users = oks.map_or(0, |a| a.distinct_principals);
            if names >= MIN_INVALID_USERS && above_users(names) && names > real_users {
                let reason = format!(
                    "username enumeration: {names} attempt(s) on user names that do not exist from {ip} ({} failed logins on {} distinct named users), first {}",
                    fails.events,
                    fails.distinct_principals,
                    input.time.format(fails.first)
                );
                let score = volume_score(40.0, 30.0, names);
                out.findings.push(finding(
                    "username_enumeration",
                    reason,
                    score,
                    &["T1589.001", "T1110"],
                ));
            }
            // Names that do not exist are enumeration, not spraying: only real users and the
            // attempts on them count.
            let users = fails.distinct_principals.saturating_sub(names).max(1);
            let real = counts.get(ip).map_or(fails.events, |n| n.real_failures);
            let successes = oks.map_or(0, |a| a.events);
            let success_share = successes as f64 / (successes + fails.events) as f64;
            if users >= MIN_SPRAYED_USERS
                && real as f64 / users as f64 <= MAX_ATTEMPTS_PER_USER
                && success_share < MAX_SPRAY_SUCCESS
                && above_users(users)
            {
                let reason = format!(
                    "password spraying: {real} failed logins over {users} distinct users from {ip} ({:.1} per user, {successes} success(es))",
                    real as f64 / users as f64
                );
                let score = volume_score(45.0, 30.0, users);
                out.findings
                    .push(finding("password_spraying", reason, score, &["T1110.003"]));
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
                    "brute force: {on_target} failed logins on {target} from {ip} in {}{tail}",
                    span_text(fails.last - fails.first)
                );
                let mut f = finding(code, reason, score, &["T1110.001"]);
                f.related.push(Entity::new(EntityKind::Principal, target));
                out.findings.push(f);
            }
        }
        Ok(())
    }

    /// Principals whose successful logins reach far more distinct hosts than their peers'.
    fn fan_out(&self, input: &DetectInput, out: &mut Detection) -> Result<()> {
        // The target (the host logged into) and the principal wait beside the frame: read for
        // the successful logins alone, those without a host left out before any column is
        // selected, those without a principal once it is.
        let named = || col(c::PRINCIPAL).is_not_null();
        let ok = input
            .present_rows_of_types(
                LOGIN,
                col(c::SUCCESS),
                c::TARGET,
                &[c::PRINCIPAL, c::TARGET],
            )?
            .lazy()
            .filter(named());
        let hosts = ok
            .group_by([col(c::PRINCIPAL)])
            .agg([col(c::TARGET)
                .n_unique()
                .cast(DataType::UInt64)
                .alias("hosts")])
            .collect()
            .stage("hosts per principal")?;
        let by_user: Vec<(String, u64)> = strs(&hosts, c::PRINCIPAL)?
            .into_iter()
            .zip(u64s(&hosts, "hosts")?)
            .collect();
        let group = |id: &str| {
            input.context.roster.get(id).map_or_else(
                || principal_kind(id).to_string(),
                |e| format!("employees of {}", e.department),
            )
        };
        let mut peers: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (id, n) in &by_user {
            peers.entry(group(id)).or_default().push(*n);
        }
        // Each group's counts sorted, with their median, once (not once per member).
        let peers: BTreeMap<String, (Vec<u64>, f64)> = peers
            .into_iter()
            .filter(|(_, h)| h.len() >= MIN_PEERS)
            .map(|(name, mut h)| {
                h.sort_unstable();
                let median = median_mad(&h).0;
                (name, (h, median))
            })
            .collect();
        let mut flagged: BTreeMap<String, (String, usize, f64)> = BTreeMap::new();
        for (id, n) in &by_user {
            let name = group(id);
            let Some((hosts, median)) = peers.get(&name) else {
                continue;
            };
            let median = *median;
            // A tier of principals that all reach this far is a role (the admins), not one
            // account gone wide: its look-alikes are the peers that reach half as many hosts.
            // (`hosts` is sorted, and holds this principal too.)
            let look_alikes = hosts.len() - hosts.partition_point(|&h| 2 * h < *n) - 1;
            let n = *n as f64;
            if n >= FANOUT_FACTOR * median.max(1.0)
                && n - median >= FANOUT_MARGIN
                && look_alikes < MIN_PEERS
            {
                flagged.insert(id.clone(), (name, hosts.len(), median));
            }
        }
        if flagged.is_empty() {
            return Ok(());
        }
        // The flagged principals' rows found by their principals first, then their activity's
        // columns read for those rows alone (not for every successful login). Those without a
        // host are left out, as they were from the counts.
        let flagged_ids: Vec<String> = flagged.keys().cloned().collect();
        let (logged_in, columns) = ((LOGIN, col(c::SUCCESS)), activity::columns(c::PRINCIPAL));
        let rows = input
            .rows_of_types_with(logged_in, c::PRINCIPAL, &flagged_ids, &columns)?
            .lazy()
            .filter(col(c::TARGET).is_not_null());
        for (id, a) in summarize(rows, c::PRINCIPAL, input)? {
            let Some((name, members, median)) = flagged.get(&id) else {
                continue;
            };
            let reason = format!(
                "host fan-out: logged into {} distinct hosts, {:.0}× the median of its {members} peers ({name})",
                a.distinct_accounts,
                a.distinct_accounts as f64 / median.max(1.0),
            );
            let entity = Entity::new(EntityKind::Principal, id.clone());
            let score = volume_score(40.0, 30.0, a.distinct_accounts);
            let mut f = a.finding(input, NAME, entity, "host_fan_out", reason, score);
            f.counts = Counted::Hosts;
            out.findings.push(tag(f, &["T1021"]));
        }
        Ok(())
    }
}

/// Names Windows gives its own logons: each is many processes on many hosts, never one person.
const BUILT_IN: [&str; 6] = [
    "ANONYMOUS LOGON",
    "SYSTEM",
    "LOCAL SERVICE",
    "NETWORK SERVICE",
    "DWM",
    "UMFD",
];

/// The peers a principal without a roster entry is compared with: a domain's computer accounts
/// (`C1234$`, `DOM1\C1234$`, `C1234$@DOM1`) and Windows' built-in logons reach many hosts by
/// design, and among them a person that goes wide has look-alikes; in a domain's
/// authentication export (the LANL data: hundreds of computer accounts each on dozens of hosts
/// a day) a red-team user on 71 hosts hid among them.
fn principal_kind(id: &str) -> &'static str {
    let name = id.rsplit('\\').next().unwrap_or(id);
    let name = name.split('@').next().unwrap_or(name).trim();
    let upper = name.to_ascii_uppercase();
    if name.ends_with('$') {
        "computer accounts"
    } else if BUILT_IN
        .iter()
        .any(|b| upper == *b || (upper.starts_with(b) && upper[b.len()..].starts_with('-')))
    {
        "built-in accounts"
    } else {
        "users"
    }
}

/// A span of milliseconds as a person says it: "under a minute", "10 min", "3.6 h", "2.5 days".
fn span_text(ms: i64) -> String {
    let minutes = ms as f64 / 60_000.0;
    match minutes {
        m if m < 1.0 => "under a minute".into(),
        m if m < 60.0 => format!("{m:.0} min"),
        m if m < 48.0 * 60.0 => format!("{:.1} h", m / 60.0),
        m => format!("{:.1} days", m / (24.0 * 60.0)),
    }
}

fn tag(mut f: Finding, techniques: &[&'static str]) -> Finding {
    f.techniques.extend_from_slice(techniques);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computer accounts in each form Windows exports write them, built-in logons with their
    /// session numbers, and people (a name that merely starts like a built-in one is a person).
    #[test]
    fn principals_are_told_apart_by_kind() {
        for (id, kind) in [
            ("C1234$", "computer accounts"),
            ("DOM1\\C1234$", "computer accounts"),
            ("C1234$@DOM1", "computer accounts"),
            ("ANONYMOUS LOGON@C586", "built-in accounts"),
            ("NT AUTHORITY\\SYSTEM", "built-in accounts"),
            ("DWM-1@C1065", "built-in accounts"),
            ("U77@DOM1", "users"),
            ("DOM1\\alice", "users"),
            ("systemadmin", "users"),
            ("dwmaster@corp", "users"),
        ] {
            assert_eq!(principal_kind(id), kind, "{id}");
        }
    }

    #[test]
    fn spans_read_as_a_person_says_them() {
        let min = 60_000;
        assert_eq!(span_text(20_000), "under a minute");
        assert_eq!(span_text(10 * min), "10 min");
        assert_eq!(span_text(216 * min), "3.6 h");
        assert_eq!(span_text(3 * 24 * 60 * min), "3.0 days");
    }
}
