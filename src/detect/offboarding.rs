//! Credential or identity used after offboarding or revocation.
//!
//! Three cut-offs, each a small (key, instant) table the events are matched against: a
//! credential's revocation plus the rotation grace, the departure of a credential's owner, and the
//! departure of the principal itself. Successful use past a cut-off is the finding; failures alone
//! (a departed person's old laptop still retrying) are reported, but low, because nothing got in.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::activity::{Activity, summarize_each};
use super::{
    DetectInput, Detection, Detector, Entity, EntityKind, Finding, Limitation, volume_score,
};
use crate::error::{FrameContext, Result};
use crate::frame::{rows_since, rows_since_each};
use crate::normalize::schema::{DAY_MS, col as c};

pub struct Offboarding;

const NAME: &str = "offboarding";
const FAILURE_ONLY_SCORE: f64 = 15.0;
const SUCCESS_BASE: f64 = 55.0;
/// A token service keeps signing with its key when the key's custodian leaves: use of a signing
/// key after its custodian left is a hygiene finding (rotate the key), not abuse by itself. The
/// abuse — tokens under that key the issuer never issued — is `forged_tokens`' proof. Without an
/// issuance log the two cannot be told apart, so the finding is medium instead of low.
const SIGNING_KEY_HYGIENE: f64 = 30.0;
const SIGNING_KEY_UNJUDGED: f64 = 45.0;

/// Which cut-off a finding is about.
#[derive(Clone, Copy)]
enum Cut {
    Revoked,
    OwnerLeft,
    PrincipalLeft,
}

impl Detector for Offboarding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let ctx = input.context;
        let mut out = Detection::default();
        if ctx.roster.is_empty() {
            out.limitations.push(Limitation {
                detector: NAME,
                note: "no HR roster given: use after departure was not checked".into(),
            });
        }
        if ctx.credentials.is_empty() {
            out.limitations.push(Limitation {
                detector: NAME,
                note: "no credential inventory given: use after revocation and keys of departed owners were not checked".into(),
            });
        }
        let issuance_given = input.has_event_type("token_issued")?;
        let grace = input.options.rotation_grace_ms;
        let revoked: Vec<(String, i64)> = ctx
            .credentials
            .values()
            .filter_map(|cr| cr.revoked.map(|r| (cr.id.clone(), r + grace)))
            .collect();
        let owner_left: Vec<(String, i64)> = ctx
            .credentials
            .values()
            .filter_map(|cr| ctx.departure(&cr.owner).map(|d| (cr.id.clone(), d)))
            .collect();
        let principal_left: Vec<(String, i64)> = ctx
            .roster
            .values()
            .filter_map(|e| e.access_ends.map(|d| (e.id.clone(), d)))
            .collect();
        let frame = (input.events, input.cold);
        // Both credential cut-offs in one pass over the credentials.
        let [late_revoked, late_owner_left] = match revoked.is_empty() && owner_left.is_empty() {
            true => Default::default(),
            false => rows_since_each(frame, c::CREDENTIAL, [&revoked, &owner_left])?,
        };
        let late_principal = match principal_left.is_empty() {
            true => Vec::new(),
            false => rows_since(frame, c::PRINCIPAL, &principal_left)?,
        };
        for (cut, key, cutoffs, rows) in [
            (Cut::Revoked, c::CREDENTIAL, revoked, late_revoked),
            (Cut::OwnerLeft, c::CREDENTIAL, owner_left, late_owner_left),
            (
                Cut::PrincipalLeft,
                c::PRINCIPAL,
                principal_left,
                late_principal,
            ),
        ] {
            let cutoff_of: BTreeMap<String, i64> = cutoffs.into_iter().collect();
            let (ok, failed) = late_use(input, key, &rows)?;
            for (id, act) in &ok {
                let failures = failed.get(id).map_or(0, |f| f.events);
                let late = Late {
                    cut,
                    failures,
                    cutoff: cutoff_of[id],
                    succeeded: true,
                    issuance_given,
                };
                out.findings.push(finding(input, id, act, late));
            }
            for (id, act) in failed.iter().filter(|(id, _)| !ok.contains_key(*id)) {
                let late = Late {
                    cut,
                    failures: act.events,
                    cutoff: cutoff_of[id],
                    succeeded: false,
                    issuance_given,
                };
                out.findings.push(finding(input, id, act, late));
            }
        }
        Ok(out)
    }
}

type Split = (BTreeMap<String, Activity>, BTreeMap<String, Activity>);

/// Activity of the `rows` at or after their key's cut-off, split into successful and failed
/// events.
fn late_use(input: &DetectInput, key: &str, rows: &[IdxSize]) -> Result<Split> {
    if rows.is_empty() {
        return Ok(Default::default());
    }
    // Late rows are few; materialising them once lets the summaries below scan a small frame
    // instead of the whole event table for every aggregate. Each summary leaves out the
    // other's rows rather than filtering a copy: the 6.2M uses of the signing key past its
    // custodian's departure at 300.15M events, nearly all successful, were copied whole; and
    // both are made from one reading of the columns.
    let late = (input.cold).select(input.events, &super::activity::columns(key), rows)?;
    let success = late
        .column(c::SUCCESS)
        .and_then(|s| s.bool())
        .stage("late use")?;
    let (ok, failed): (Vec<bool>, Vec<bool>) = (success.iter())
        .map(|s| (s == Some(true), s == Some(false)))
        .unzip();
    let mut each = summarize_each(&late, key, input, &[Some(&ok), Some(&failed)])?.into_iter();
    Ok((
        each.next().unwrap_or_default(),
        each.next().unwrap_or_default(),
    ))
}

/// What is known about one entity's use past one cut-off.
struct Late {
    cut: Cut,
    failures: u64,
    cutoff: i64,
    succeeded: bool,
    /// The run has token issuance events, so `forged_tokens` judges a signing key's tokens.
    issuance_given: bool,
}

fn finding(input: &DetectInput, id: &str, act: &Activity, late: Late) -> Finding {
    let Late {
        cut,
        failures,
        cutoff,
        succeeded,
        issuance_given,
    } = late;
    let ctx = input.context;
    let t = input.time;
    let cred = ctx.credentials.get(id);
    let kind = cred.map_or("credential", |c| c.kind.as_str());
    let (entity, code, whose, mark) = match cut {
        Cut::Revoked => (
            Entity::new(EntityKind::Credential, id),
            "used_after_revocation",
            format!(
                "{kind} {id}, revoked {}",
                cred.and_then(|c| c.revoked_text.clone())
                    .unwrap_or_default()
            ),
            format!(
                "revoked {} (+grace)",
                cred.and_then(|c| c.revoked_text.clone())
                    .unwrap_or_default()
            ),
        ),
        Cut::OwnerLeft => {
            let owner = cred.map_or("", |c| c.owner.as_str());
            (
                Entity::new(EntityKind::Credential, id),
                "used_after_owner_left",
                format!("{kind} {id} of {}", describe_person(input, owner)),
                format!("owner {owner} left {}", left_on(input, owner)),
            )
        }
        Cut::PrincipalLeft => (
            Entity::new(EntityKind::Principal, id),
            "principal_used_after_departure",
            format!("account of {}", describe_person(input, id)),
            format!("{id} left {}", left_on(input, id)),
        ),
    };
    let lag_days = (act.first - cutoff).div_euclid(DAY_MS);
    let verb = if succeeded {
        "used successfully"
    } else {
        "tried without success"
    };
    let mut reason = format!(
        "{whose}: {verb} {} time(s) on {} account(s) from {} source(s), first {} ({lag_days} day(s) after the cut-off), last {}",
        act.events,
        act.distinct_accounts,
        act.distinct_sources,
        t.format(act.first),
        t.format(act.last),
    );
    let hygiene = succeeded && matches!(cut, Cut::OwnerLeft) && kind == "signing_key";
    let score = match (succeeded, hygiene) {
        (false, _) => FAILURE_ONLY_SCORE,
        (true, false) => volume_score(SUCCESS_BASE, 30.0, act.distinct_accounts),
        (true, true) if issuance_given => {
            reason.push_str(&format!(
                "; the token service may still sign with it {lag_days} day(s) after its custodian left: rotate the key (tokens it never issued are judged by forged_tokens)"
            ));
            SIGNING_KEY_HYGIENE
        }
        (true, true) => {
            reason.push_str("; without a token issuance log the issuer's own signing cannot be told from forged tokens: give the issuance log, and rotate the key");
            SIGNING_KEY_UNJUDGED
        }
    };
    let mut f = act.finding(input, NAME, entity, code, reason, score);
    f.hygiene = hygiene;
    if let (Cut::OwnerLeft, Some(cr)) = (cut, cred) {
        f.related
            .push(Entity::new(EntityKind::Principal, cr.owner.clone()));
    }
    f.techniques.push("T1078");
    if kind == "signing_key" {
        f.techniques.push("T1552.004");
    }
    f.marks = vec![
        (mark, cutoff),
        (
            format!("first late use {}", t.format_date(act.first)),
            act.first,
        ),
    ];
    f.evidence.insert("cutoff".into(), t.format(cutoff).into());
    f.evidence.insert("lag_days".into(), lag_days.into());
    f.evidence
        .insert("successful_events".into(), act.successes.into());
    f.evidence.insert("failed_events".into(), failures.into());
    f
}

fn left_on(input: &DetectInput, id: &str) -> String {
    let roster = input.context.roster.get(id);
    roster
        .and_then(|e| e.termination_date.clone())
        .unwrap_or_default()
}

/// "E0042 (Jane Doe, engineering), who left on 2025-06-30" — or just the id when not on the roster.
fn describe_person(input: &DetectInput, id: &str) -> String {
    match input.context.roster.get(id) {
        Some(e) => format!(
            "{id} ({}, {}), who left on {}",
            e.name,
            e.department,
            e.termination_date.as_deref().unwrap_or("?")
        ),
        None => id.to_string(),
    }
}
