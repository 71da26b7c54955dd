//! Credential inventory: `credential_id, owner, kind, created, revoked`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{line_error, read_table};
use crate::error::Result;
use crate::normalize::TimeParser;

#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    /// Employee id or service name.
    pub owner: String,
    pub kind: String,
    pub created: Option<i64>,
    /// A date-only `revoked` is read as the end of that day, like a termination date, so a key
    /// rotated "on" a day is not flagged for traffic on that same day.
    pub revoked: Option<i64>,
    pub revoked_text: Option<String>,
}

pub fn load_credentials(path: &Path, time: &TimeParser) -> Result<BTreeMap<String, Credential>> {
    let mut out = BTreeMap::new();
    for (line, row) in read_table(
        path,
        &["credential_id", "owner", "kind", "created", "revoked"],
    )? {
        let get = |k: &str| row.get(k).cloned().unwrap_or_default();
        let id = get("credential_id");
        if id.is_empty() {
            return Err(line_error(path, line, "empty credential_id".into()));
        }
        let created = match get("created") {
            s if s.is_empty() => None,
            s => Some(
                time.start_of_day(&s)
                    .map_err(|r| line_error(path, line, format!("created: {r}")))?,
            ),
        };
        let revoked_text = Some(get("revoked")).filter(|s| !s.is_empty());
        let revoked = match &revoked_text {
            None => None,
            Some(s) => Some(
                time.end_of_day(s)
                    .map_err(|r| line_error(path, line, format!("revoked: {r}")))?,
            ),
        };
        let cred = Credential {
            id: id.clone(),
            owner: get("owner"),
            kind: get("kind").to_ascii_lowercase(),
            created,
            revoked,
            revoked_text,
        };
        if out.insert(id.clone(), cred).is_some() {
            return Err(line_error(
                path,
                line,
                format!("duplicate credential_id {id:?}"),
            ));
        }
    }
    Ok(out)
}
