//! Signing-key misuse seen from the logs alone: tokens the issuer never issued, tokens presented
//! under another key than they were issued with or past any plausible lifetime, one token shared by
//! many addresses, and many subjects reached from addresses no token was ever issued to.
//!
//! The issuance log is reduced to one row per token id, and one pass over the event table judges
//! every token-bearing access against it (see [`super::issuance`]); only the rows each question
//! selects are then gathered, normally a tiny fraction, so every aggregation runs on a small
//! frame. Where the issuance log does not cover an access (before it starts, after it ends, on a
//! day it has a gap) a never-issued token is not an accusation; it is counted in the summary's
//! limitations instead.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::activity::{
    Activity, Group, per_group, summarize, summarize_named, token_names, top_values_by,
};
use super::issuance::{Coverage, Judged, facts_at_once, judged_in_ranges};
use super::{
    DetectInput, Detection, Detector, Entity, EntityKind, Finding, Limitation, json_list,
    volume_score,
};
use crate::error::{FrameContext, Result};
use crate::normalize::cold::ROW;
use crate::normalize::columns::network_of;
use crate::normalize::schema::col as c;

pub struct ForgedTokens;

const NAME: &str = "forged_tokens";
/// One token seen from more addresses than this is shared or replayed.
const MAX_ADDRESSES_PER_TOKEN: u32 = 3;
/// "Many subjects, few addresses": at least this many subjects per address.
const SUBJECTS_PER_ADDRESS: u64 = 20;
const MIN_SUBJECTS: u64 = 50;
/// A token the issuer never issued, at a time its log covers, under a key that signs tokens: the
/// key can mint any identity outside the issuer. That is proof, not a pattern, so it starts
/// critical-adjacent (78, critical from two accounts) and volume adds less than elsewhere: it
/// outranks any enumeration of no more accounts (`docs/scoring.md`).
const PROOF_BASE: f64 = 78.0;
const PROOF_BONUS: f64 = 20.0;

impl Detector for ForgedTokens {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Its token facts and judged rows, beside the light detectors', set the nightly peak
    /// over a large state (see [`super::run`]).
    fn wave(&self) -> usize {
        1
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let mut out = Detection::default();
        let max_age = input.options.max_token_age_ms;
        let (events, cold) = (input.events, input.cold);
        // Facts in as few ranges as the memory under the run's peak allows (see
        // `issuance::facts_at_once`): each range is one more pass over the rows.
        let size = (events.estimated_size(), events.height());
        let at_once = facts_at_once(size, crate::memory::headroom());
        let codes = (input.tokens.len(), at_once);
        let max_addresses = MAX_ADDRESSES_PER_TOKEN as usize;
        let frame = (events, cold, input.types()?);
        let judged = judged_in_ranges(frame, codes, max_age, max_addresses, input.time)?;
        let Some((judged, cover)) = judged else {
            out.limitations.push(Limitation {
                detector: NAME,
                note: "no token_issued events: never-issued tokens, token lifetimes and issuing addresses were not checked".into(),
            });
            return Ok(out);
        };
        // The token facts went once judged, before the accesses are gathered and grouped: over
        // the 85.9M-event state they were 0.48 GB, still held while the polars work below added
        // its 0.2 GB.
        let Judged {
            never,
            suspect,
            issued_at,
            issued_kid,
            unissuing,
            shared,
        } = judged;
        // The never-issued tokens the log covers are nearly all the suspects when a key is
        // forged with, and the other questions read none of them: each set of rows is gathered
        // and asked on its own, the proof first and dropped before the rest is gathered.
        self.never_issued(input, accesses(input, &never)?.lazy(), &mut out)?;
        drop(never);
        let mut rest = accesses(input, &suspect)?;
        // Compared with the keys' physical codes below, in whatever width the run holds them.
        let issued_kid = crate::frame::keys::physical_codes(&rest, c::CREDENTIAL, issued_kid)?;
        for column in [
            Column::new("issued_at".into(), issued_at),
            Column::new("issued_kid".into(), issued_kid),
        ] {
            rest.with_column(column)
                .stage("joining accesses to issued tokens")?;
        }
        // Never issued among the rest: at an instant the log does not cover.
        let never = col("issued_at").is_null();
        let past_life = (col(c::TS) - col("issued_at")).gt(lit(max_age));
        let other_key = col("issued_kid")
            .is_not_null()
            .and(col(c::CREDENTIAL).is_not_null())
            .and(col(c::CREDENTIAL).to_physical().neq(col("issued_kid")));
        let rows = || rest.clone().lazy();
        self.uncovered(input, rows().filter(never), &cover, &mut out)?;
        let lifetime = format!(
            "older than {} h",
            input.options.max_token_age_ms / 3_600_000
        );
        for (rows, code, what, base) in [
            (
                rows().filter(past_life),
                "token_past_lifetime",
                lifetime.as_str(),
                35.0,
            ),
            (
                rows().filter(other_key),
                "token_under_other_key",
                "presented under another key than it was issued with",
                45.0,
            ),
        ] {
            for (kid, act) in summarize(rows, c::CREDENTIAL, input)? {
                let reason = format!("{} access(es) with tokens {what}", act.events);
                out.findings.push(key_finding(
                    input,
                    &kid,
                    code,
                    reason,
                    volume_score(base, 30.0, act.distinct_accounts),
                    &act,
                    None,
                ));
            }
        }
        self.shared_tokens(input, accesses(input, &shared)?, &mut out)?;
        self.unissuing_addresses(input, accesses(input, &unissuing)?, &mut out)?;
        Ok(out)
    }
}

impl ForgedTokens {
    fn never_issued(
        &self,
        input: &DetectInput,
        rows: LazyFrame,
        out: &mut Detection,
    ) -> Result<()> {
        let names = |codes: &[u32], each: &mut dyn FnMut(usize, &str)| {
            token_names(input.tokens, codes, each)
        };
        let tokens = top_values_by(rows.clone(), c::CREDENTIAL, c::TOKEN, &names)?;
        let per_key = per_group(rows.clone(), &[c::CREDENTIAL])?;
        let per_source = per_group(rows.clone(), &[c::CREDENTIAL, c::SOURCE_IP])?;
        let token_count = |k: &str| {
            per_key
                .iter()
                .find(|g| g.keys[0] == k)
                .map_or(0, |g| g.tokens)
        };
        for (kid, act) in summarize(rows.clone(), c::CREDENTIAL, input)? {
            let n_tokens = token_count(&kid);
            let reason = format!(
                "{} access(es) with {} token(s) the issuer never issued, for {} subject(s) on {} account(s) from {} address(es), first {}",
                act.events,
                n_tokens,
                act.distinct_principals,
                act.distinct_accounts,
                act.distinct_sources,
                input.time.format(act.first)
            );
            let sample: Vec<String> = tokens
                .get(&kid)
                .map(|t| t.iter().map(|(id, _)| id.clone()).collect())
                .unwrap_or_default();
            let mut f = key_finding(
                input,
                &kid,
                "never_issued_tokens",
                reason,
                volume_score(PROOF_BASE, PROOF_BONUS, act.distinct_accounts),
                &act,
                Some(n_tokens),
            );
            f.evidence
                .insert("sample_tokens".into(), json_list(&sample));
            let by_source: Vec<serde_json::Value> = per_source
                .iter()
                .filter(|g| g.keys[0] == kid)
                .map(|g| {
                    serde_json::json!({"source_ip": g.keys[1], "accesses": g.accesses, "tokens": g.tokens,
                                       "subjects": g.subjects, "accounts": g.accounts})
                })
                .collect();
            f.evidence.insert("by_source".into(), by_source.into());
            f.techniques.push("T1606");
            f.marks.push((
                format!(
                    "first never-issued token {}",
                    input.time.format_date(act.first)
                ),
                act.first,
            ));
            out.findings.push(f);
        }
        self.forger_sources(input, rows, &per_source, out)
    }

    /// The address a forger works from is proof too, once it presented tokens for many
    /// subjects: it joins the key's incident. (Enumeration leaves addresses whose requests each
    /// read the requester's own account to this log's judgement.) Several such addresses in one
    /// /24 or /64 are one finding about the network, as a rotating attacker is one actor;
    /// addresses that presented a token or two each stay in the key's evidence (`by_source`).
    fn forger_sources(
        &self,
        input: &DetectInput,
        rows: LazyFrame,
        per_source: &[Group],
        out: &mut Detection,
    ) -> Result<()> {
        let mut rows = rows.collect().stage("never-issued rows")?;
        if rows.height() == 0 {
            return Ok(());
        }
        // Subjects are counted per address first, and only the forgers' addresses summarised:
        // all 5.87M never-issued accesses of the 300.15M-event export summarised per address
        // set the detector's peak (sixtieth session's probes).
        let per_address = per_group(rows.clone().lazy(), &[c::SOURCE_IP])?;
        let forgers = (per_address.iter())
            .filter(|g| g.subjects >= SUBJECTS_PER_ADDRESS)
            .map(|g| g.keys[0].as_str());
        let by_address = summarize_named(&rows, c::SOURCE_IP, input, forgers)?;
        let forgers: Vec<&String> = by_address.keys().collect();
        let mut per_network: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for ip in &forgers {
            if let Some(net) = network_of(ip) {
                per_network.entry(net).or_default().push(ip.as_str());
            }
        }
        per_network.retain(|_, ips| ips.len() >= 2);
        let in_network =
            |ip: &str| network_of(ip).is_some_and(|net| per_network.contains_key(&net));
        let kids_of = |ips: &[&str]| -> Vec<String> {
            let keys: BTreeSet<&str> = (per_source.iter())
                .filter(|g| ips.contains(&g.keys[1].as_str()))
                .map(|g| g.keys[0].as_str())
                .collect();
            keys.into_iter().map(str::to_string).collect()
        };
        let mut found: Vec<(EntityKind, String, Activity, Vec<String>)> = Vec::new();
        for ip in forgers.iter().filter(|ip| !in_network(ip)) {
            let kids = kids_of(&[ip.as_str()]);
            found.push((
                EntityKind::SourceIp,
                (*ip).clone(),
                by_address[*ip].clone(),
                kids,
            ));
        }
        if !per_network.is_empty() {
            let networks = crate::normalize::networks::network_column(&rows)?;
            rows.with_column(networks).stage("never-issued rows")?;
            let nets = per_network.keys().map(String::as_str);
            let by_network = summarize_named(&rows, c::NETWORK, input, nets)?;
            for (net, ips) in &per_network {
                if let Some(act) = by_network.get(net) {
                    found.push((EntityKind::Network, net.clone(), act.clone(), kids_of(ips)));
                }
            }
        }
        for (kind, id, act, kids) in found {
            let reason = format!(
                "{} access(es) from {id} with tokens the issuer never issued, for {} subject(s) on {} account(s), under {}, first {}",
                act.events,
                act.distinct_principals,
                act.distinct_accounts,
                kids.join(", "),
                input.time.format(act.first)
            );
            let mut f = act.finding(
                input,
                NAME,
                Entity::new(kind, id),
                "never_issued_tokens_from_source",
                reason,
                volume_score(PROOF_BASE, PROOF_BONUS, act.distinct_accounts),
            );
            f.related.extend(
                kids.iter()
                    .map(|k| Entity::new(EntityKind::Credential, k.clone())),
            );
            f.techniques.extend(["T1552.004", "T1606"]);
            out.findings.push(f);
        }
        Ok(())
    }

    fn uncovered(
        &self,
        input: &DetectInput,
        rows: LazyFrame,
        cover: &Coverage,
        out: &mut Detection,
    ) -> Result<()> {
        let t = input.time;
        let gaps: Vec<String> = cover.gaps.iter().map(|d| t.format_day(*d)).collect();
        for (kid, act) in summarize(rows, c::CREDENTIAL, input)? {
            out.limitations.push(Limitation {
                detector: NAME,
                note: format!(
                    "{} access(es) under {kid} between {} and {} carry tokens absent from the issuance log, but the issuance log does not cover this period (it runs {} → {}{}): not judged",
                    act.events,
                    t.format(act.first),
                    t.format(act.last),
                    t.format(cover.start),
                    t.format(cover.end),
                    if gaps.is_empty() { String::new() } else { format!(", no issuance on {}", gaps.join(", ")) }
                ),
            });
        }
        Ok(())
    }

    /// `rows`: the accesses whose token is presented from more than
    /// [`MAX_ADDRESSES_PER_TOKEN`] addresses.
    fn shared_tokens(
        &self,
        input: &DetectInput,
        rows: DataFrame,
        out: &mut Detection,
    ) -> Result<()> {
        if rows.height() == 0 {
            return Ok(());
        }
        let rows = rows.lazy();
        for (kid, act) in summarize(rows, c::CREDENTIAL, input)? {
            let reason = format!(
                "tokens each presented from more than {MAX_ADDRESSES_PER_TOKEN} addresses: {} access(es) from {} address(es)",
                act.events, act.distinct_sources
            );
            out.findings.push(key_finding(
                input,
                &kid,
                "token_shared_across_addresses",
                reason,
                volume_score(30.0, 30.0, act.distinct_accounts),
                &act,
                None,
            ));
        }
        Ok(())
    }

    /// The incident's pattern: thousands of subjects, one key, a handful of addresses that no
    /// issued token ever came from.
    ///
    /// `rows`: the token-bearing accesses from addresses no token was issued to.
    fn unissuing_addresses(
        &self,
        input: &DetectInput,
        rows: DataFrame,
        out: &mut Detection,
    ) -> Result<()> {
        let rows = rows.lazy();
        for (kid, act) in summarize(rows, c::CREDENTIAL, input)? {
            let sources = act.distinct_sources.max(1);
            if act.distinct_principals < MIN_SUBJECTS
                || act.distinct_principals / sources < SUBJECTS_PER_ADDRESS
            {
                continue;
            }
            let reason = format!(
                "{} token subject(s) reached from only {} address(es) that never received an issued token",
                act.distinct_principals, act.distinct_sources
            );
            let mut f = key_finding(
                input,
                &kid,
                "subjects_from_unissuing_addresses",
                reason,
                volume_score(35.0, 30.0, act.distinct_principals),
                &act,
                None,
            );
            f.techniques.push("T1606");
            out.findings.push(f);
        }
        Ok(())
    }
}

/// The columns the token questions read, for event-table `rows`.
fn accesses(input: &DetectInput, rows: &[IdxSize]) -> Result<DataFrame> {
    let names = [
        c::TS,
        c::TOKEN,
        c::CREDENTIAL,
        c::PRINCIPAL,
        c::TARGET,
        c::SOURCE_IP,
        c::SUCCESS,
        ROW,
    ];
    input.cold.select(input.events, &names, rows)
}

/// A finding about signing key `kid`, with the evidence every token finding carries.
fn key_finding(
    input: &DetectInput,
    kid: &str,
    code: &'static str,
    reason: String,
    score: f64,
    act: &Activity,
    tokens: Option<u64>,
) -> Finding {
    let mut f = act.finding(
        input,
        NAME,
        Entity::new(EntityKind::Credential, kid),
        code,
        reason,
        score,
    );
    if let Some(cred) = input.context.credentials.get(kid) {
        f.related
            .push(Entity::new(EntityKind::Principal, cred.owner.clone()));
    }
    if let Some(n) = tokens {
        f.evidence.insert("tokens".into(), n.into());
    }
    f.techniques.push("T1552.004");
    f
}
