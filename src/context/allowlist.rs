//! Allowlist of known jobs (TOML): explicit, owned and expiring, so that suppressing a finding is a
//! decision someone signed, not a threshold someone tuned.
//!
//! ```toml
//! [[allow]]
//! entity = "svc-billing"          # entity id as it appears in anomalies.csv
//! kind = "principal"              # optional: credential, principal, source_ip, network
//! reason = "nightly billing reconciliation touches 15% of customers"
//! expires = "2026-12-31"          # the entry covers activity up to the end of this day
//! owner = "payments-oncall@example.com"
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::normalize::TimeParser;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    entity: String,
    kind: Option<String>,
    reason: String,
    expires: String,
    owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    allow: Vec<RawEntry>,
}

/// One allowlist entry.
#[derive(Debug, Clone)]
pub struct Allow {
    pub entity: String,
    pub kind: Option<String>,
    pub reason: String,
    pub expires: String,
    /// First instant after the expiry day (company time zone).
    pub expires_at: i64,
    pub owner: String,
}

pub fn load_allowlist(path: &Path, time: &TimeParser) -> Result<Vec<Allow>> {
    let text = crate::ingest::decompress::read_text(path)?;
    let raw: RawFile = toml::from_str(&text).map_err(|e| Error::ContextLine {
        path: path.to_path_buf(),
        line: e
            .span()
            .map_or(0, |s| text[..s.start].lines().count() as u64),
        reason: e.message().to_string(),
    })?;
    raw.allow
        .into_iter()
        .map(|e| {
            let bad = |reason: String| Error::ContextLine {
                path: path.to_path_buf(),
                line: 0,
                reason,
            };
            if e.reason.trim().is_empty() || e.owner.trim().is_empty() {
                return Err(bad(format!(
                    "entry {:?} needs a reason and an owner",
                    e.entity
                )));
            }
            let expires_at = time
                .end_of_day(&e.expires)
                .map_err(|r| bad(format!("entry {:?}: expires: {r}", e.entity)))?;
            Ok(Allow {
                entity: e.entity,
                kind: e.kind.map(|k| k.to_ascii_lowercase()),
                reason: e.reason,
                expires: e.expires,
                expires_at,
                owner: e.owner,
            })
        })
        .collect()
}
