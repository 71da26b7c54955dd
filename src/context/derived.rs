//! Context recovered from the logs when no file gives it: Okta's `user.lifecycle.deactivate` /
//! `suspend` and Entra ID's `Disable account` / `Delete user` (any `principal_offboarded` event a
//! profile maps) become offboarding dates, CloudTrail's `CreateAccessKey`, `DeleteAccessKey` and
//! `UpdateAccessKey … Inactive` become a key inventory. A file always wins; derived context is
//! announced in the summary because it only knows what the export happens to contain.
//!
//! One rule with the files: only a *successful* deactivation or revocation counts (a denied
//! `DeleteAccessKey` revoked nothing); a later successful reactivation (`unsuspend`,
//! `reactivate`, `UpdateAccessKey … Active`) re-opens access, so only a deactivation that nothing
//! undid makes a leaver; and a departure taken from the logs ends access where a roster's
//! termination date does — at the end of that local day — so both paths judge the same use alike.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::{Context, Credential, Employee};
use crate::error::{FrameContext, Result};
use crate::frame::{i64s, strs};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};

/// Fills what `ctx` lacks and returns one note per derived table.
pub fn derive_from_events(
    events: &DataFrame,
    cold: &ColdColumns,
    ctx: &mut Context,
    time: &TimeParser,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if ctx.roster_path.is_some() && ctx.credentials_path.is_some() {
        return Ok(notes);
    }
    // Lifecycle events are few, and in few of the frame's chunks: their rows are selected
    // there, with the target account, which waits beside the frame.
    let types = crate::frame::event_type::TypesByChunk::of(events)?;
    let of_type = |t: &str| -> Result<LazyFrame> {
        let rows = types.rows(events, &[t], col(c::SUCCESS))?;
        let names = [c::TS, c::PRINCIPAL, c::CREDENTIAL, c::TARGET];
        Ok(cold.select(events, &names, &rows)?.lazy())
    };
    if ctx.roster_path.is_none() {
        let left = last_of(
            of_type("principal_offboarded")?,
            c::TARGET,
            "offboarding events",
        )?;
        let back = last_of(
            of_type("principal_reactivated")?,
            c::TARGET,
            "reactivation events",
        )?;
        for (id, at) in left {
            if back.get(&id).is_some_and(|b| *b >= at) {
                continue;
            }
            let date = time.format_date(at);
            let employee = Employee {
                id: id.clone(),
                name: String::new(),
                department: "(from logs)".into(),
                access_ends: time.end_of_day(&date).ok().or(Some(at)),
                termination_date: Some(date),
            };
            ctx.roster.insert(id, employee);
        }
        if !ctx.roster.is_empty() {
            notes.push(format!(
                "no roster file: {} departure(s) taken from deactivate/suspend events in the logs; people who left without one are not known",
                ctx.roster.len()
            ));
        }
    }
    if ctx.credentials_path.is_none() {
        let created = of_type("credential_created")?
            .filter(col(c::CREDENTIAL).is_not_null())
            .group_by([col(c::CREDENTIAL)])
            .agg([
                col(c::TS).min().alias("at"),
                col(c::TARGET)
                    .fill_null(col(c::PRINCIPAL))
                    .first()
                    .alias("owner"),
            ])
            .collect()
            .stage("key creation events")?;
        let owners = strs(&created, "owner")?;
        for ((id, at), owner) in strs(&created, c::CREDENTIAL)?
            .into_iter()
            .zip(i64s(&created, "at")?)
            .zip(owners)
        {
            ctx.credentials.insert(
                id.clone(),
                Credential {
                    id,
                    owner,
                    kind: "access_key".into(),
                    created: Some(at),
                    revoked: None,
                    revoked_text: None,
                },
            );
        }
        let revoked = of_type("credential_revoked")?
            .filter(col(c::CREDENTIAL).is_not_null())
            .group_by([col(c::CREDENTIAL)])
            .agg([
                col(c::TS).max().alias("at"),
                col(c::PRINCIPAL).first().alias("by"),
            ])
            .collect()
            .stage("key revocation events")?;
        let back = last_of(
            of_type("credential_reactivated")?,
            c::CREDENTIAL,
            "key reactivation events",
        )?;
        let by = strs(&revoked, "by")?;
        for ((id, at), by) in strs(&revoked, c::CREDENTIAL)?
            .into_iter()
            .zip(i64s(&revoked, "at")?)
            .zip(by)
        {
            if back.get(&id).is_some_and(|b| *b >= at) {
                continue;
            }
            let cred = ctx
                .credentials
                .entry(id.clone())
                .or_insert_with(|| Credential {
                    id,
                    owner: by,
                    kind: "access_key".into(),
                    created: None,
                    revoked: None,
                    revoked_text: None,
                });
            cred.revoked = Some(at);
            cred.revoked_text = Some(time.format(at));
        }
        if !ctx.credentials.is_empty() {
            notes.push(format!(
                "no credential inventory file: {} key(s) taken from key creation / deletion events in the logs; keys created before the export are not known",
                ctx.credentials.len()
            ));
        }
    }
    Ok(notes)
}

/// The last instant of each value of `key` among `rows`.
fn last_of(rows: LazyFrame, key: &str, what: &'static str) -> Result<BTreeMap<String, i64>> {
    let df = rows
        .filter(col(key).is_not_null())
        .group_by([col(key)])
        .agg([col(c::TS).max().alias("at")])
        .collect()
        .stage(what)?;
    Ok(strs(&df, key)?.into_iter().zip(i64s(&df, "at")?).collect())
}
