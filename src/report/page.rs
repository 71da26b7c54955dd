//! The summary's content, independent of its format: `summary.md` and `summary.html` render the
//! same [`Page`], so the text twin and the browser view can never tell different stories.

use super::ReportData;
use super::charts::Chart;
use crate::detect::Counted;
use crate::rank::{Ranked, Severity};

/// A block of content; renderers escape every string (log fields are attacker-controlled).
pub enum Block {
    Text(String),
    /// An incident's heading, with its severity (coloured in the HTML).
    Heading(String, Option<Severity>),
    Facts(Vec<(String, String)>),
    List(Vec<String>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Images(Vec<(String, String)>),
}

pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

pub struct Page {
    pub title: String,
    pub subtitle: String,
    pub sections: Vec<Section>,
}

const TOP_ROWS: usize = 15;
const STORIES: usize = 3;

pub fn build(data: &ReportData, charts: &[Chart]) -> Page {
    let mut sections = vec![verdict(data)];
    sections.push(incidents(data, charts));
    sections.push(findings(data));
    if !charts.is_empty() {
        let images = charts
            .iter()
            .map(|c| (c.title.clone(), c.path.display().to_string()))
            .collect();
        sections.push(Section {
            title: "Charts".into(),
            blocks: vec![Block::Images(images)],
        });
    }
    sections.push(what_ran(data));
    sections.push(totals(data));
    sections.push(coverage(data));
    sections.push(suppressed(data));
    sections.push(limits(data));
    Page {
        title: "audithound report".into(),
        subtitle: format!(
            "audithound {} · time zone {} · schema {}",
            env!("CARGO_PKG_VERSION"),
            data.info.time_zone,
            super::jsonl::SCHEMA
        ),
        sections,
    }
}

fn verdict(data: &ReportData) -> Section {
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
    let mut blocks = vec![Block::Text(format!(
        "{} entities flagged in {} incident(s): {}. {} suppressed by the allowlist.",
        data.ranked.len(),
        data.incidents.len(),
        counts.join(", "),
        data.suppressed.len()
    ))];
    if data.ranked.is_empty() {
        blocks.push(Block::Text("Nothing was found. Check \"What the data could not tell\" below before concluding there is nothing to find.".into()));
    }
    Section {
        title: "Verdict".into(),
        blocks,
    }
}

/// One screen per incident: what, since when, how many accounts, from where, and why.
fn incidents(data: &ReportData, charts: &[Chart]) -> Section {
    let t = data.time;
    let population = &data.info.population;
    let mut blocks = Vec::new();
    for inc in data
        .incidents
        .iter()
        .filter(|i| data.ranked[i.rows[0]].severity >= data.min_level)
        .take(STORIES)
    {
        let rows: Vec<&Ranked> = inc.rows.iter().map(|i| &data.ranked[*i]).collect();
        let top = rows[0];
        blocks.push(Block::Heading(
            format!(
                "Incident {} · {} · score {:.1} · {} {}",
                inc.number,
                top.severity.name(),
                top.score,
                top.entity.kind.name(),
                top.entity.id
            ),
            Some(top.severity),
        ));
        let mut facts = Vec::new();
        if let Some((f, _)) = top.reasons.first() {
            facts.push(("What".into(), f.reason.clone()));
        }
        let first = rows.iter().filter_map(|r| r.first_seen).min();
        let last = rows.iter().filter_map(|r| r.last_seen).max();
        if let (Some(a), Some(b)) = (first, last) {
            facts.push((
                "When".into(),
                format!(
                    "{} → {} ({} days)",
                    t.format(a),
                    t.format(b),
                    (b - a) / 86_400_000 + 1
                ),
            ));
        }
        let (accounts, std::cmp::Reverse(counts)) = rows
            .iter()
            .map(|r| (r.distinct_accounts, std::cmp::Reverse(r.counts)))
            .max()
            .unwrap_or_default();
        let events = rows.iter().map(|r| r.events).max().unwrap_or(0);
        let how_many = match counts {
            Counted::Accounts => format!(
                "{accounts} distinct accounts ({}), {events} events",
                population.percent_of(accounts)
            ),
            other => format!(
                "{accounts} distinct {}, {events} events",
                other.noun(population)
            ),
        };
        facts.push(("How many".into(), how_many));
        let sources: Vec<String> = top
            .reasons
            .iter()
            .find_map(|(f, _)| {
                f.evidence
                    .get("top_sources")
                    .and_then(|v| v.as_array())
                    .cloned()
            })
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Some(format!("{} ({} events)", p.get(0)?.as_str()?, p.get(1)?)))
            .collect();
        if !sources.is_empty() {
            facts.push(("From".into(), sources.join(", ")));
        }
        for (label, list) in [
            ("Endpoints", &top.usage.endpoints),
            ("Clients", &top.usage.clients),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                facts.push((label.into(), items.join(", ")));
            }
        }
        let why: Vec<String> = top
            .reasons
            .iter()
            .map(|(f, s)| format!("{} ({})", f.code, share_text(*s)))
            .collect();
        facts.push(("Why this score".into(), why.join(", ")));
        facts.push(("ATT&CK".into(), top.techniques.join(", ")));
        let members: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "#{} {} {} ({}, {:.1})",
                    r.rank,
                    r.entity.kind.name(),
                    r.entity.id,
                    r.severity.name(),
                    r.score
                )
            })
            .collect();
        facts.push(("Entities".into(), members.join("; ")));
        let mut linked: Vec<String> = rows
            .iter()
            .flat_map(|r| r.related.iter())
            .filter(|e| !rows.iter().any(|r| r.entity == **e))
            .map(|e| format!("{} {}", e.kind.name(), e.id))
            .collect();
        linked.sort();
        linked.dedup();
        if !linked.is_empty() {
            facts.push(("Linked".into(), linked.join(", ")));
        }
        blocks.push(Block::Facts(facts));
        let reasons: Vec<String> = rows
            .iter()
            .flat_map(|r| {
                r.reasons.iter().map(move |(f, s)| {
                    format!(
                        "{} — {} ({}): {}",
                        r.entity.id,
                        f.code,
                        share_text(*s),
                        f.reason
                    )
                })
            })
            .collect();
        blocks.push(Block::List(reasons));
        let mine: Vec<(String, String)> = charts
            .iter()
            .filter(|c| {
                rows.iter().any(|r| {
                    c.title.contains(&format!(" {} ", r.entity.id))
                        || c.title.ends_with(&format!(" {}", r.entity.id))
                })
            })
            .map(|c| (c.title.clone(), c.path.display().to_string()))
            .collect();
        if !mine.is_empty() {
            blocks.push(Block::Images(mine));
        }
    }
    if blocks.is_empty() {
        blocks.push(Block::Text(
            "No incident at or above the chosen level.".into(),
        ));
    }
    Section {
        title: "Incidents".into(),
        blocks,
    }
}

fn findings(data: &ReportData) -> Section {
    let t = data.time;
    let head = [
        "rank",
        "incident",
        "score",
        "severity",
        "entity",
        "first seen",
        "last seen",
        "events",
        "accounts",
        "reasons",
    ];
    let rows = data
        .shown()
        .take(TOP_ROWS)
        .map(|r| {
            let codes: Vec<&str> = r.reasons.iter().map(|(f, _)| f.code).collect();
            vec![
                r.rank.to_string(),
                r.incident.to_string(),
                format!("{:.1}", r.score),
                r.severity.name().into(),
                format!("{} {}", r.entity.kind.name(), r.entity.id),
                r.first_seen.map(|v| t.format(v)).unwrap_or_default(),
                r.last_seen.map(|v| t.format(v)).unwrap_or_default(),
                r.events.to_string(),
                r.distinct_accounts.to_string(),
                codes.join(", "),
            ]
        })
        .collect();
    Section {
        title: format!("Top findings (at or above {})", data.min_level.name()),
        blocks: vec![Block::Table {
            head: head.map(String::from).to_vec(),
            rows,
        }],
    }
}

fn what_ran(data: &ReportData) -> Section {
    let t = data.time;
    let info = data.info;
    let mut facts = vec![
        ("inputs".to_string(), info.inputs.join(", ")),
        (
            "roster".into(),
            info.roster.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "credential inventory".into(),
            info.credentials.clone().unwrap_or_else(|| "none".into()),
        ),
        ("time zone".into(), info.time_zone.clone()),
    ];
    if let Some((a, b)) = info.time_range {
        facts.push((
            "events span".into(),
            format!("{} → {}", t.format(a), t.format(b)),
        ));
    }
    let (from, to) = info.window;
    if from.is_some() || to.is_some() {
        facts.push((
            "window".into(),
            format!(
                "{} → {}: {} events outside it were left out",
                from.map(|v| t.format(v)).unwrap_or_else(|| "start".into()),
                to.map(|v| t.format(v)).unwrap_or_else(|| "end".into()),
                info.events_outside_window
            ),
        ));
    }
    facts.push(("events analysed".into(), info.events_in_window.to_string()));
    facts.push(("account population".into(), info.population.derivation()));
    Section {
        title: "What ran".into(),
        blocks: vec![Block::Facts(facts)],
    }
}

fn totals(data: &ReportData) -> Section {
    let (mut rec, mut par, mut rej, mut ign, mut blank) = (0, 0, 0, 0, 0);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for f in data.files {
        rec += f.records;
        par += f.parsed;
        rej += f.rejected;
        ign += f.ignored;
        blank += f.blank;
        rows.push(vec![
            f.file.clone(),
            f.format.clone(),
            f.records.to_string(),
            f.parsed.to_string(),
            f.rejected.to_string(),
            f.ignored.to_string(),
            f.blank.to_string(),
        ]);
    }
    rows.push(vec![
        "total".into(),
        String::new(),
        rec.to_string(),
        par.to_string(),
        rej.to_string(),
        ign.to_string(),
        blank.to_string(),
    ]);
    let verdict = if rec == par + rej + ign {
        "reconciles"
    } else {
        "DOES NOT reconcile"
    };
    let mut blocks = vec![
        Block::Table {
            head: [
                "file", "format", "records", "parsed", "rejected", "ignored", "blank",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        },
        Block::Text(format!(
            "records read {rec} = parsed {par} + rejected {rej} + ignored {ign}: {verdict}. Rejected records are listed in rejects.csv; ignored records are of a known format but carry no authentication event (another program's syslog line, a row a profile filters out)."
        )),
    ];
    let warnings: Vec<String> = data
        .files
        .iter()
        .flat_map(|f| f.warnings.iter().map(move |w| format!("{}: {w}", f.file)))
        .collect();
    if !warnings.is_empty() {
        blocks.push(Block::Text(format!(
            "{} warning(s): {}.",
            warnings.len(),
            warnings.join("; ")
        )));
    }
    let unlisted: Vec<String> = data
        .rejects
        .iter()
        .filter(|r| r.unlisted > 0)
        .map(|r| format!("{} ({} more)", r.file, r.unlisted))
        .collect();
    if !unlisted.is_empty() {
        blocks.push(Block::Text(format!(
            "rejects.csv lists at most {} rejected records per file; the rest were counted above but not listed: {}.",
            crate::ingest::quarantine::MAX_LISTED_PER_FILE,
            unlisted.join(", ")
        )));
    }
    let unreadable: Vec<String> = data
        .files
        .iter()
        .filter_map(|f| Some(format!("{}: {}", f.file, f.unreadable.as_ref()?)))
        .collect();
    blocks.push(Block::Text(format!(
        "files: {} read, {} could not be read completely, {} skipped as of unknown format.",
        data.files.len(),
        unreadable.len(),
        data.skipped.len()
    )));
    if !unreadable.is_empty() {
        blocks.push(Block::Text(
            "INCOMPLETE INPUT: these files could not be read to their end, so this report covers less than was asked (--keep-going):".into(),
        ));
        blocks.push(Block::List(unreadable));
    }
    if !data.skipped.is_empty() {
        blocks.push(Block::Text(format!(
            "{} file(s) of unknown format were skipped:",
            data.skipped.len()
        )));
        blocks.push(Block::List(
            data.skipped
                .iter()
                .map(|(p, why)| format!("{}: {why}", p.display()))
                .collect(),
        ));
    }
    Section {
        title: "Input totals".into(),
        blocks,
    }
}

fn coverage(data: &ReportData) -> Section {
    let t = data.time;
    let rows = data
        .coverage
        .iter()
        .map(|c| {
            vec![
                c.stats.file.clone(),
                c.stats.format.clone(),
                match (c.first, c.last) {
                    (Some(a), Some(b)) => format!("{} → {}", t.format(a), t.format(b)),
                    _ => "no events".into(),
                },
                crate::inspect::fill_line(c),
                if c.gap_days.is_empty() {
                    "none".into()
                } else {
                    crate::inspect::gap_line(c, t)
                },
            ]
        })
        .collect();
    Section {
        title: "Coverage".into(),
        blocks: vec![Block::Table {
            head: ["file", "format", "time range", "fields filled", "gaps"]
                .map(String::from)
                .to_vec(),
            rows,
        }],
    }
}

fn suppressed(data: &ReportData) -> Section {
    let blocks = if data.suppressed.is_empty() {
        vec![Block::Text("Nothing was suppressed.".into())]
    } else {
        let rows = data
            .suppressed
            .iter()
            .map(|x| {
                vec![
                    format!("{} {}", x.row.entity.kind.name(), x.row.entity.id),
                    format!("{:.1}", x.row.score),
                    x.row.severity.name().into(),
                    x.allow.reason.clone(),
                    x.allow.owner.clone(),
                    x.allow.expires.clone(),
                ]
            })
            .collect();
        vec![
            Block::Text(format!(
                "{} entities were removed from the ranking by allowlist entries:",
                data.suppressed.len()
            )),
            Block::Table {
                head: [
                    "entity",
                    "would-be score",
                    "severity",
                    "reason",
                    "owner",
                    "expires",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            },
        ]
    };
    Section {
        title: "Suppressed by the allowlist".into(),
        blocks,
    }
}

fn limits(data: &ReportData) -> Section {
    let blocks = if data.limitations.is_empty() {
        vec![Block::Text(
            "Every detector had the inputs it needs.".into(),
        )]
    } else {
        vec![Block::List(
            data.limitations
                .iter()
                .map(|l| format!("{}: {}", l.detector, l.note))
                .collect(),
        )]
    };
    Section {
        title: "What the data could not tell".into(),
        blocks,
    }
}

/// A reason's share of its row's score, or why it has none: within one detector only the
/// strongest view of a behaviour counts (`docs/scoring.md`).
fn share_text(share: f64) -> String {
    if share > 0.0 {
        format!("{:.0}%", share * 100.0)
    } else {
        "same behaviour, not counted again".into()
    }
}
