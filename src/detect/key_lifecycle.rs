//! Signing keys outside their life: presented before the inventory says they were created, under a
//! key id the inventory does not know, or still active although their custodian has left (a
//! hygiene finding, low on its own, that explains the rest when the key is abused).
//! Use after revocation is [`super::offboarding`]'s job and is not repeated here.

use polars::prelude::*;

use super::activity::{columns, summarize};
use super::{
    DetectInput, Detection, Detector, Entity, EntityKind, Finding, evidence, volume_score,
};
use crate::error::Result;
use crate::frame::keys::physical_series;
use crate::frame::{dictionary, rows_before};
use crate::normalize::schema::{DAY_MS, col as c};

pub struct KeyLifecycle;

const NAME: &str = "key_lifecycle";
const DEPARTED_CUSTODIAN_SCORE: f64 = 20.0;

impl Detector for KeyLifecycle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, input: &DetectInput) -> Result<Detection> {
        let mut out = Detection::default();
        let creds = &input.context.credentials;
        if input.context.credentials_path.is_none() {
            return Ok(out);
        }
        // The inventory is small: a set-membership filter beats a join. The token codes wait
        // beside the frame: read for the rows of unknown keys alone.
        let known: Vec<String> = creds.keys().cloned().collect();
        let known = physical_series(input.events, c::CREDENTIAL, &known)?;
        let unknown = input
            .rows_where(
                col(c::CREDENTIAL).is_not_null().and(
                    col(c::CREDENTIAL)
                        .to_physical()
                        .is_in(lit(known).implode(false), false)
                        .not(),
                ),
                &with_token(c::CREDENTIAL),
            )?
            .lazy()
            .filter(col(c::TOKEN).is_not_null());
        for (kid, act) in summarize(unknown, c::CREDENTIAL, input)? {
            let reason = format!(
                "key id {kid} is not in the credential inventory, yet {} token-bearing event(s) on {} account(s) present it",
                act.events, act.distinct_accounts
            );
            out.findings.push(finding(
                input,
                &kid,
                "key_not_in_inventory",
                reason,
                volume_score(45.0, 30.0, act.distinct_accounts),
                &act,
            ));
        }

        let created: Vec<(String, i64)> = creds
            .values()
            .filter_map(|k| k.created.map(|t| (k.id.clone(), t)))
            .collect();
        // First token-bearing use per key (one pass the run makes for two detectors); only keys
        // seen before their creation have their rows gathered and summarised.
        let (dict, first) = (dictionary(), input.first_token_uses()?);
        let first_use = |id: &str| dict.code(id).and_then(|code| first.get(&code).copied());
        let early_keys: Vec<(String, i64)> = created
            .into_iter()
            .filter(|(id, at)| first_use(id).is_some_and(|f| f < *at))
            .collect();
        if !early_keys.is_empty() {
            let rows = rows_before((input.events, input.cold), c::CREDENTIAL, &early_keys)?;
            let early = input
                .cold
                .select(input.events, &with_token(c::CREDENTIAL), &rows)?
                .lazy()
                .filter(col(c::TOKEN).is_not_null());
            for (kid, act) in summarize(early, c::CREDENTIAL, input)? {
                let reason = format!(
                    "{} token-bearing event(s) before the key was created",
                    act.events
                );
                out.findings.push(finding(
                    input,
                    &kid,
                    "key_used_before_created",
                    reason,
                    volume_score(45.0, 30.0, act.distinct_accounts),
                    &act,
                ));
            }
        }

        // One scan of the time stamps, not one per key.
        let end = input.events_end()?;
        for key in creds.values().filter(|k| k.kind == "signing_key") {
            let Some(left) = input.context.departure(&key.owner) else {
                continue;
            };
            let grace = input.options.rotation_grace_ms;
            if key.revoked.is_some_and(|r| r <= left + grace) {
                continue;
            }
            let days = end.map(|end| (end - left).div_euclid(DAY_MS));
            let reason = format!(
                "signing key {} is still active although its custodian {} left on {}{}",
                key.id,
                key.owner,
                input
                    .context
                    .roster
                    .get(&key.owner)
                    .and_then(|e| e.termination_date.clone())
                    .unwrap_or_default(),
                days.filter(|d| *d > 0)
                    .map(|d| format!(" ({d} days before the export ends)"))
                    .unwrap_or_default()
            );
            out.findings.push(Finding {
                detector: NAME,
                entity: Entity::new(EntityKind::Credential, key.id.clone()),
                code: "departed_custodian_key_active",
                hygiene: true,
                reason,
                score: DEPARTED_CUSTODIAN_SCORE,
                first_seen: None,
                last_seen: None,
                events: 0,
                distinct_accounts: 0,
                counts: super::Counted::Accounts,
                marks: vec![],
                related: vec![Entity::new(EntityKind::Principal, key.owner.clone())],
                techniques: vec!["T1552.004"],
                evidence: evidence([
                    ("custodian", key.owner.clone().into()),
                    ("custodian_left", input.time.format(left).into()),
                ]),
            });
        }
        Ok(out)
    }
}

fn finding(
    input: &DetectInput,
    kid: &str,
    code: &'static str,
    reason: String,
    score: f64,
    act: &super::activity::Activity,
) -> Finding {
    let mut f = act.finding(
        input,
        NAME,
        Entity::new(EntityKind::Credential, kid),
        code,
        reason,
        score,
    );
    f.techniques = vec!["T1552.004", "T1606"];
    f
}

/// What [`summarize`] reads by `key`, and the token codes, to keep the rows that carry one.
fn with_token(key: &str) -> Vec<&str> {
    let mut names = columns(key);
    names.push(c::TOKEN);
    names
}
