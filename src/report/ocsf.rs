//! Incidents as OCSF Detection Findings (class 2004, OCSF 1.1), one JSON line each, so a SIEM or
//! AWS Security Lake takes audithound's results without a parser of its own. One finding per
//! incident, not per row: the incident is what an analyst triages; its rows become observables.
//!
//! Mapping (documented in `docs/output.md`): severity → `severity_id` (informational 1 … critical
//! 5); score → `risk_score`; the strongest row's first reason → `finding_info.title`, all reasons
//! of the incident → `finding_info.desc` and `types` (reason codes); ATT&CK ids → `attacks`; every
//! entity and linked entity → `observables`; the counts → `evidences[].data`. `time` is the
//! incident's last activity, so the output depends on the input only (byte-identical runs).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{ReportData, write_error};
use crate::detect::{Entity, EntityKind};
use crate::error::Result;
use crate::rank::{Ranked, Severity};

const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;
/// `activity_id` 1: Create (a new finding).
const ACTIVITY_CREATE: u32 = 1;
const OCSF_VERSION: &str = "1.1.0";

fn severity_id(s: Severity) -> u32 {
    match s {
        Severity::Informational => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF observable `type_id` of an entity: user credential id, user name, IP address, subnet.
fn observable(e: &Entity) -> Value {
    let (type_id, kind) = match e.kind {
        EntityKind::Credential => (19, "credential"),
        EntityKind::Principal => (4, "principal"),
        EntityKind::SourceIp => (2, "source_ip"),
        EntityKind::Network => (12, "network"),
    };
    json!({"name": kind, "type_id": type_id, "value": e.id})
}

pub fn write(path: &Path, data: &ReportData) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| write_error(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    for inc in data.incidents {
        let rows: Vec<&Ranked> = inc.rows.iter().map(|i| &data.ranked[*i]).collect();
        if rows[0].severity < data.min_level {
            continue;
        }
        let line = finding(inc.number, &rows, data);
        serde_json::to_writer(&mut w, &line).map_err(|e| write_error(path, e))?;
        w.write_all(b"\n").map_err(|e| write_error(path, e))?;
    }
    w.flush().map_err(|e| write_error(path, e))
}

fn finding(number: usize, rows: &[&Ranked], data: &ReportData) -> Value {
    let top = rows[0];
    let t = data.time;
    let first = rows.iter().filter_map(|r| r.first_seen).min();
    let last = rows.iter().filter_map(|r| r.last_seen).max();
    let title = top
        .reasons
        .first()
        .map_or_else(String::new, |(f, _)| f.reason.clone());
    let reasons: Vec<String> = rows
        .iter()
        .flat_map(|r| r.reasons.iter())
        .map(|(f, _)| format!("{} {}: {}", f.entity.kind.name(), f.entity.id, f.reason))
        .collect();
    let codes: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.reasons.iter().map(|(f, _)| f.code))
        .collect();
    let techniques: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.techniques.iter().copied())
        .collect();
    let detectors: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.detectors.iter().copied())
        .collect();
    let mut entities: Vec<&Entity> = rows.iter().map(|r| &r.entity).collect();
    entities.extend(rows.iter().flat_map(|r| r.related.iter()));
    let mut seen = BTreeSet::new();
    entities.retain(|e| seen.insert((*e).clone()));
    let evidence: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"data": {
                "entity": {"type": r.entity.kind.name(), "id": r.entity.id},
                "score": r.score,
                "severity": r.severity.name(),
                "events": r.events,
                "distinct_accounts": r.distinct_accounts,
                "accounts_are": r.counts.noun(&data.info.population),
                "reasons": r.reasons.iter().map(|(f, _)| f.code).collect::<Vec<_>>(),
            }})
        })
        .collect();
    let uid = format!(
        "audithound:{}:{}:{}",
        top.entity.kind.name(),
        top.entity.id,
        first.unwrap_or_default()
    );
    json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id(top.severity),
        "severity": top.severity.name(),
        "status_id": 1,
        "status": "New",
        "time": last.unwrap_or_default(),
        "risk_score": top.score.round() as i64,
        "message": title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "audithound", "vendor_name": "audithound", "version": env!("CARGO_PKG_VERSION")},
        },
        "finding_info": {
            "uid": uid,
            "title": title,
            "desc": reasons.join("\n"),
            "types": codes,
            "first_seen_time": first,
            "last_seen_time": last,
            "analytic": {"name": detectors.into_iter().collect::<Vec<_>>().join(","), "type_id": 1, "type": "Rule"},
            "attacks": techniques.iter().map(|t| json!({"technique": {"uid": t}, "version": "15"})).collect::<Vec<_>>(),
        },
        "observables": entities.iter().map(|e| observable(e)).collect::<Vec<_>>(),
        "evidences": evidence,
        "unmapped": {
            "incident": number,
            "first_seen": first.map(|v| t.format(v)),
            "last_seen": last.map(|v| t.format(v)),
        },
    })
}
