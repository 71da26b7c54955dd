//! `inspect`: what an export holds before anyone analyses it — per file the detected format,
//! records, rejects, time range, how often each canonical field is filled, and gaps in time.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ingest;
use crate::ingest::coverage::{FIELDS, FileCoverage, coverage};
use crate::normalize::TimeParser;

pub struct InspectPlan {
    pub inputs: Vec<PathBuf>,
    pub time: TimeParser,
    pub read: ingest::ReadPlan,
}

/// The coverage report as text (stdout of `inspect`).
pub fn run(plan: &InspectPlan) -> Result<String> {
    let found = ingest::discover(&plan.inputs)?;
    if found.events.is_empty() {
        return Err(Error::NoEvents);
    }
    let opts = plan.read.options(plan.time)?;
    let ingested = ingest::read_events(&found, &opts, false)?;
    let cov = coverage(&ingested.files);
    let mut s = render(&cov, &plan.time);
    for (path, why) in &ingested.skipped {
        let _ = writeln!(s, "SKIPPED {}: {why}", path.display());
    }
    if let Some(p) = &found.roster {
        let _ = writeln!(s, "context: roster {}", p.display());
    }
    if let Some(p) = &found.credentials {
        let _ = writeln!(s, "context: credentials {}", p.display());
    }
    Ok(s)
}

/// One block per file; shared with the summary's coverage section through [`fill_line`].
pub fn render(cov: &[FileCoverage], time: &TimeParser) -> String {
    let mut s = String::new();
    for c in cov {
        let st = &c.stats;
        let _ = writeln!(
            s,
            "{}\n  format {} · records {} = parsed {} + rejected {} + ignored {} (blank {})",
            st.file, st.format, st.records, st.parsed, st.rejected, st.ignored, st.blank
        );
        if let (Some(a), Some(b)) = (c.first, c.last) {
            let _ = writeln!(s, "  time {} → {}", time.format(a), time.format(b));
        }
        let _ = writeln!(s, "  filled {}", fill_line(c));
        if !c.gap_days.is_empty() {
            let _ = writeln!(s, "  gaps {}", gap_line(c, time));
        }
    }
    s
}

/// `principal 100% · token_id 42% · …` (fields never filled are listed as 0%).
pub fn fill_line(c: &FileCoverage) -> String {
    FIELDS
        .iter()
        .zip(&c.filled)
        .map(|((name, _), share)| format!("{name} {:.0}%", share * 100.0))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `3 day(s) with no event: 2025-03-04, …` (at most five dates listed).
pub fn gap_line(c: &FileCoverage, time: &TimeParser) -> String {
    let dates: Vec<String> = c
        .gap_days
        .iter()
        .take(5)
        .map(|d| time.format_day(*d))
        .collect();
    let more = if c.gap_days.len() > 5 { ", …" } else { "" };
    format!(
        "{} day(s) with no event: {}{more}",
        c.gap_days.len(),
        dates.join(", ")
    )
}
