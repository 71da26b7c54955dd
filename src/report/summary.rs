//! `summary.md`: the page a person reads first — what ran, whether the input totals reconcile,
//! the top findings with their evidence and charts, and what the data could not tell.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::Chart;
use super::{ReportData, write_error};
use crate::error::Result;
use crate::rank::Severity;

const TOP: usize = 10;

pub fn write(path: &Path, data: &ReportData, charts: &[Chart]) -> Result<()> {
    let text = render(data, charts);
    std::fs::write(path, text).map_err(|e| write_error(path, e))
}

/// Renders the summary; markdown table cells get `|` escaped because log fields may contain it.
pub fn render(data: &ReportData, charts: &[Chart]) -> String {
    let t = data.time;
    let info = data.info;
    let mut s = String::new();
    let _ = writeln!(s, "# audithound report\n");
    let _ = writeln!(
        s,
        "audithound {} · time zone {}",
        env!("CARGO_PKG_VERSION"),
        info.time_zone
    );
    let _ = writeln!(s, "\n## Verdict\n");
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|lvl| {
            format!(
                "{} {}",
                data.ranked.iter().filter(|r| r.severity == *lvl).count(),
                lvl.name()
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "{} entities flagged: {}.",
        data.ranked.len(),
        counts.join(", ")
    );
    if let Some(top) = data.ranked.first() {
        let _ = writeln!(
            s,
            "Top: **{} {}** — score {:.1} ({}), {} events on {} distinct accounts.",
            top.entity.kind.name(),
            cell(&top.entity.id),
            top.score,
            top.severity.name(),
            top.events,
            top.distinct_accounts
        );
        for (f, share) in &top.reasons {
            let _ = writeln!(
                s,
                "- {} ({:.0}%): {}",
                f.code,
                share * 100.0,
                cell(&f.reason)
            );
        }
    }
    let _ = writeln!(
        s,
        "\n## Top findings (at or above {})\n",
        data.min_level.name()
    );
    let _ = writeln!(
        s,
        "| rank | score | severity | entity | first seen | last seen | events | accounts | reasons |"
    );
    let _ = writeln!(s, "|---:|---:|---|---|---|---|---:|---:|---|");
    for r in data.shown().take(TOP) {
        let codes: Vec<&str> = r.reasons.iter().map(|(f, _)| f.code).collect();
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} {} | {} | {} | {} | {} | {} |",
            r.rank,
            r.score,
            r.severity.name(),
            r.entity.kind.name(),
            cell(&r.entity.id),
            r.first_seen.map(|v| t.format(v)).unwrap_or_default(),
            r.last_seen.map(|v| t.format(v)).unwrap_or_default(),
            r.events,
            r.distinct_accounts,
            codes.join(", ")
        );
    }
    if !charts.is_empty() {
        let _ = writeln!(s, "\n## Charts\n");
        for ch in charts {
            let _ = writeln!(s, "- [{}]({})", cell(&ch.title), ch.path.display());
        }
    }
    let _ = writeln!(s, "\n## What ran\n");
    let _ = writeln!(s, "- inputs: {}", info.inputs.join(", "));
    let _ = writeln!(s, "- roster: {}", info.roster.as_deref().unwrap_or("none"));
    let _ = writeln!(
        s,
        "- credential inventory: {}",
        info.credentials.as_deref().unwrap_or("none")
    );
    if let Some((a, b)) = info.time_range {
        let _ = writeln!(s, "- events span {} → {}", t.format(a), t.format(b));
    }
    let (from, to) = info.window;
    if from.is_some() || to.is_some() {
        let _ = writeln!(
            s,
            "- window {} → {}: {} events outside it were left out",
            from.map(|v| t.format(v)).unwrap_or_else(|| "start".into()),
            to.map(|v| t.format(v)).unwrap_or_else(|| "end".into()),
            info.events_outside_window
        );
    }
    let _ = writeln!(
        s,
        "- distinct target accounts (customer base seen): {}",
        info.distinct_accounts
    );
    let _ = writeln!(s, "\n## Input totals\n");
    let _ = writeln!(s, "| file | format | records | parsed | rejected | blank |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    let (mut rec, mut par, mut rej, mut blank) = (0, 0, 0, 0);
    for f in data.files {
        rec += f.records;
        par += f.parsed;
        rej += f.rejected;
        blank += f.blank;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.file),
            f.format,
            f.records,
            f.parsed,
            f.rejected,
            f.blank
        );
    }
    let _ = writeln!(s, "| **total** | | {rec} | {par} | {rej} | {blank} |");
    let verdict = if rec == par + rej {
        "reconciles"
    } else {
        "DOES NOT reconcile"
    };
    let _ = writeln!(
        s,
        "\nrecords read {rec} = parsed {par} + rejected {rej}: {verdict}. Rejected records are listed in `rejects.csv`."
    );
    if !data.skipped.is_empty() {
        let _ = writeln!(
            s,
            "\n{} file(s) of unknown format were skipped:",
            data.skipped.len()
        );
        for p in data.skipped {
            let _ = writeln!(s, "- {}", cell(&p.display().to_string()));
        }
    }
    let _ = writeln!(s, "\n## Suppressed by the allowlist\n");
    if data.suppressed.is_empty() {
        let _ = writeln!(s, "Nothing was suppressed.");
    } else {
        let _ = writeln!(
            s,
            "{} entities were removed from the ranking by allowlist entries:\n",
            data.suppressed.len()
        );
        let _ = writeln!(
            s,
            "| entity | would-be score | severity | reason | owner | expires |"
        );
        let _ = writeln!(s, "|---|---:|---|---|---|---|");
        for x in data.suppressed {
            let _ = writeln!(
                s,
                "| {} {} | {:.1} | {} | {} | {} | {} |",
                x.row.entity.kind.name(),
                cell(&x.row.entity.id),
                x.row.score,
                x.row.severity.name(),
                cell(&x.allow.reason),
                cell(&x.allow.owner),
                cell(&x.allow.expires)
            );
        }
    }
    let _ = writeln!(s, "\n## What the data could not tell\n");
    if data.limitations.is_empty() {
        let _ = writeln!(s, "Every detector had the inputs it needs.");
    }
    for l in data.limitations {
        let _ = writeln!(s, "- {}: {}", l.detector, cell(&l.note));
    }
    s
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
