//! Context: who works here (HR roster) and which credentials exist (inventory).
//!
//! Context files are small and decisive: one wrong termination date silently hides an insider, so
//! unlike event files a malformed context row stops the run with the file and line.

mod allowlist;
mod credentials;
mod derived;
mod roster;

pub use allowlist::{Allow, load_allowlist};
pub use credentials::{Credential, load_credentials};
pub use derived::derive_from_events;
pub use roster::{Employee, load_roster};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The roster and inventory, keyed for lookups. Either may be absent; detectors then say what they
/// could not check instead of reporting "nothing found".
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub roster: BTreeMap<String, Employee>,
    pub credentials: BTreeMap<String, Credential>,
    pub roster_path: Option<PathBuf>,
    pub credentials_path: Option<PathBuf>,
}

impl Context {
    /// The instant from which an employee's access is no longer legitimate, if they have left.
    pub fn departure(&self, employee: &str) -> Option<i64> {
        self.roster.get(employee).and_then(|e| e.access_ends)
    }
}

/// Reads a CSV context file into header-addressed rows, checking the required columns first.
pub(crate) fn read_table(
    path: &Path,
    required: &[&str],
) -> Result<Vec<(u64, BTreeMap<String, String>)>> {
    let bytes = crate::ingest::decompress::read_to_end(path)?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::ContextLine {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("cannot read header: {e}"),
        })?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    // Two columns of one name: which one wins would silently decide (an empty second
    // `termination_date` hid a departure), so the file is refused.
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(Error::ContextLine {
                path: path.to_path_buf(),
                line: 1,
                reason: format!("column {h:?} appears more than once in the header"),
            });
        }
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !headers.iter().any(|h| h == r))
        .collect();
    if !missing.is_empty() {
        return Err(Error::ContextHeader {
            path: path.to_path_buf(),
            missing: missing.join(", "),
            found: headers.join(", "),
        });
    }
    let mut rows = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(|e| Error::ContextLine {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row = headers
            .iter()
            .cloned()
            .zip(record.iter().map(|v| v.trim().to_string()))
            .collect();
        rows.push((line, row));
    }
    Ok(rows)
}

pub(crate) fn line_error(path: &Path, line: u64, reason: String) -> Error {
    Error::ContextLine {
        path: path.to_path_buf(),
        line,
        reason,
    }
}
