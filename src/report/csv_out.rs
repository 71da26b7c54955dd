//! CSV reports. Log fields are attacker-controlled and these files get opened in spreadsheets, so
//! every cell goes through [`neutralize`] (formula injection, CWE-1236) and quoting is left to the
//! `csv` crate.

use std::path::Path;

use super::{ReportData, write_error};
use crate::detect::Counted;
use crate::error::Result;
use crate::ingest::FileRejects;

/// Prefixes a cell that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR) with `'`.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).map_err(|e| write_error(path, e))
}

fn row<'a>(
    w: &mut csv::Writer<std::fs::File>,
    path: &Path,
    cells: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let cells: Vec<std::borrow::Cow<str>> = cells.into_iter().map(neutralize).collect();
    w.write_record(cells.iter().map(|c| c.as_ref()))
        .map_err(|e| write_error(path, e))
}

pub const ANOMALY_COLUMNS: [&str; 17] = [
    "rank",
    "incident",
    "score",
    "severity",
    "entity_type",
    "entity_id",
    "detectors",
    "first_seen",
    "last_seen",
    "events",
    "distinct_accounts",
    "share_of_population",
    "reasons",
    "related",
    "techniques",
    "top_sources",
    "accounts_are",
];

pub fn write_anomalies(path: &Path, data: &ReportData) -> Result<()> {
    let mut w = writer(path)?;
    row(&mut w, path, ANOMALY_COLUMNS)?;
    let t = data.time;
    let population = &data.info.population;
    for r in data.shown() {
        let reasons: Vec<String> = r
            .reasons
            .iter()
            .map(|(f, share)| format!("{} ({:.0}%): {}", f.code, share * 100.0, f.reason))
            .collect();
        let related: Vec<String> = r
            .related
            .iter()
            .map(|e| format!("{}:{}", e.kind.name(), e.id))
            .collect();
        let sources: Vec<String> = r
            .reasons
            .first()
            .and_then(|(f, _)| f.evidence.get("top_sources"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get(0).and_then(|s| s.as_str()).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let cells = [
            r.rank.to_string(),
            r.incident.to_string(),
            format!("{:.2}", r.score),
            r.severity.name().to_string(),
            r.entity.kind.name().to_string(),
            r.entity.id.clone(),
            r.detectors.join(";"),
            r.first_seen.map(|v| t.format(v)).unwrap_or_default(),
            r.last_seen.map(|v| t.format(v)).unwrap_or_default(),
            r.events.to_string(),
            r.distinct_accounts.to_string(),
            // Hosts and user names are not shares of the account population.
            match r.counts {
                Counted::Accounts => format!("{:.4}", population.share(r.distinct_accounts)),
                _ => String::new(),
            },
            reasons.join(" | "),
            related.join(";"),
            r.techniques.join(";"),
            sources.join(";"),
            r.counts.noun(population).to_string(),
        ];
        row(&mut w, path, cells.iter().map(String::as_str))?;
    }
    w.flush().map_err(|e| write_error(path, e))
}

/// Every listed reject, file by file in input order, streamed from the ingest's spill files.
pub fn write_rejects(path: &Path, rejects: &[FileRejects]) -> Result<()> {
    let mut w = writer(path)?;
    row(&mut w, path, ["file", "line", "reason", "raw"])?;
    for file in rejects {
        file.for_each(|r| {
            let line = r.line.to_string();
            row(
                &mut w,
                path,
                [
                    r.file.as_str(),
                    line.as_str(),
                    r.reason.as_str(),
                    r.raw.as_str(),
                ],
            )
        })?;
    }
    w.flush().map_err(|e| write_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formula_triggers_are_defused() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralize(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralize("kid-legacy"), "kid-legacy");
        assert_eq!(neutralize(""), "");
    }
}
