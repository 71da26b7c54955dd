//! Reports: everything a run writes, produced in a temporary directory beside the destination and
//! renamed into place only when complete, so a crash or an error never leaves a half report that
//! looks finished.

pub mod charts;
pub mod csv_out;
pub mod destination;
pub mod jsonl;
pub mod ocsf;
pub mod page;
pub mod palette;
pub mod series;
pub mod summary;
pub mod terminal;

use std::path::{Path, PathBuf};

pub use destination::Destination;

use crate::detect::{Finding, Limitation};
use crate::error::{Error, Result};
use crate::ingest::{FileRejects, FileStats};
use crate::normalize::TimeParser;
use crate::rank::{Incident, Ranked, Severity, Suppressed};

/// Facts about the run that the summary states.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub inputs: Vec<String>,
    pub roster: Option<String>,
    pub credentials: Option<String>,
    pub time_zone: String,
    pub window: (Option<i64>, Option<i64>),
    pub events_in_window: u64,
    pub events_outside_window: u64,
    pub time_range: Option<(i64, i64)>,
    /// The account population every share is taken of.
    pub population: crate::detect::population::Population,
}

/// Everything the writers need.
pub struct ReportData<'a> {
    pub ranked: &'a [Ranked],
    /// Groups of related rows, in rank order (indices into `ranked`).
    pub incidents: &'a [Incident],
    pub formats: Formats,
    pub min_level: Severity,
    pub files: &'a [FileStats],
    /// Per-file coverage (format, time range, field fill, gaps).
    pub coverage: &'a [crate::ingest::coverage::FileCoverage],
    /// Each file's rejects (counts, a sample, the spill file that lists them).
    pub rejects: &'a [FileRejects],
    /// Rows the allowlist removed; counted and listed in the summary.
    pub suppressed: &'a [Suppressed],
    pub skipped: &'a [(PathBuf, String)],
    pub limitations: &'a [Limitation],
    pub info: &'a RunInfo,
    pub time: &'a TimeParser,
    /// Numbers behind the charts, computed by [`series::compute`] from the event frame.
    pub charts: &'a series::ChartData,
}

/// Which outputs to write (`--format csv,jsonl,html,md,png`, and `ocsf` on request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub csv: bool,
    pub jsonl: bool,
    /// One OCSF Detection Finding per incident (`findings.ocsf.jsonl`).
    pub ocsf: bool,
    pub html: bool,
    pub md: bool,
    pub png: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            csv: true,
            jsonl: true,
            ocsf: false,
            html: true,
            md: true,
            png: true,
        }
    }
}

impl Formats {
    /// Parses a comma-separated list; an unknown name is an error, not a silent no-op.
    pub fn parse(list: &str) -> Result<Formats> {
        let mut f = Formats {
            csv: false,
            jsonl: false,
            ocsf: false,
            html: false,
            md: false,
            png: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "csv" => f.csv = true,
                "jsonl" | "json" => f.jsonl = true,
                "ocsf" => f.ocsf = true,
                "html" => f.html = true,
                "md" | "markdown" => f.md = true,
                "png" | "charts" => f.png = true,
                other => {
                    return Err(Error::Argument {
                        what: "--format",
                        value: other.to_string(),
                        reason: "use csv, jsonl, ocsf, html, md, png".into(),
                    });
                }
            }
        }
        Ok(f)
    }
}

impl ReportData<'_> {
    /// Rows at or above `--min-level`; the totals in the summary still count everything.
    pub fn shown(&self) -> impl Iterator<Item = &Ranked> {
        self.ranked
            .iter()
            .filter(move |r| r.severity >= self.min_level)
    }

    /// The strongest row of each incident at or above `--min-level`, in incident order: what
    /// gets charts, so an incident is charted once.
    pub fn leads(&self) -> impl Iterator<Item = &Ranked> {
        self.incidents
            .iter()
            .map(|i| &self.ranked[i.rows[0]])
            .filter(move |r| r.severity >= self.min_level)
    }
}

/// Writes all outputs into a temporary directory beside `dest` and moves it into place (see
/// [`destination`] for what may be replaced).
pub fn write(dest: &Destination, data: &ReportData) -> Result<()> {
    let tmp = dest.scratch(".audithound-tmp-")?;
    destination::mark(tmp.path())?;
    write_all(tmp.path(), data)?;
    dest.install(tmp.path())?;
    // The directory was renamed away; nothing left for the guard to delete.
    let _ = tmp.keep();
    Ok(())
}

fn write_all(dir: &Path, data: &ReportData) -> Result<()> {
    let f = data.formats;
    if f.csv {
        csv_out::write_anomalies(&dir.join("anomalies.csv"), data)?;
        csv_out::write_rejects(&dir.join("rejects.csv"), data.rejects)?;
    }
    if f.jsonl {
        jsonl::write(&dir.join("anomalies.jsonl"), data)?;
    }
    if f.ocsf {
        ocsf::write(&dir.join("findings.ocsf.jsonl"), data)?;
    }
    let charts = if f.png {
        let charts_dir = dir.join("charts");
        std::fs::create_dir_all(&charts_dir).map_err(|e| Error::io(&charts_dir, e))?;
        charts::write_all(&charts_dir, data)?
    } else {
        Vec::new()
    };
    let page = page::build(data, &charts);
    if f.md {
        summary::write_md(&dir.join("summary.md"), &page)?;
    }
    if f.html {
        summary::write_html(&dir.join("summary.html"), &page)?;
    }
    Ok(())
}

/// Marks on a chart: departure, revocation, first anomaly, deduplicated by label.
pub(crate) fn marks_of(row: &Ranked) -> Vec<(String, i64)> {
    let mut marks: Vec<(String, i64)> = row
        .reasons
        .iter()
        .flat_map(|(f, _): &(Finding, f64)| f.marks.iter().cloned())
        .collect();
    marks.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    marks.dedup_by(|a, b| a.0 == b.0);
    marks
}

pub(crate) fn write_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}
