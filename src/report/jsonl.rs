//! `anomalies.jsonl`: one ranked entity per line, schema `audithound.anomaly/1` (`docs/output.md`).

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{ReportData, write_error};
use crate::error::Result;
use crate::rank::Ranked;

pub const SCHEMA: &str = "audithound.anomaly/1";

/// The JSON object of one ranked row; also used by tests.
pub fn to_json(r: &Ranked, data: &ReportData) -> Value {
    let t = data.time;
    let reasons: Vec<Value> = r
        .reasons
        .iter()
        .map(|(f, share)| {
            json!({
                "detector": f.detector,
                "code": f.code,
                "reason": f.reason,
                "score": f.score,
                "share": share,
                "first_seen": f.first_seen.map(|v| t.format(v)),
                "last_seen": f.last_seen.map(|v| t.format(v)),
                "events": f.events,
                "distinct_accounts": f.distinct_accounts,
                "techniques": f.techniques,
                "evidence": f.evidence,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "rank": r.rank,
        "incident": r.incident,
        "score": r.score,
        "severity": r.severity,
        "entity": {"type": r.entity.kind, "id": r.entity.id},
        "detectors": r.detectors,
        "first_seen": r.first_seen.map(|v| t.format(v)),
        "last_seen": r.last_seen.map(|v| t.format(v)),
        "events": r.events,
        "distinct_accounts": r.distinct_accounts,
        "accounts_are": r.counts.noun(&data.info.population),
        "techniques": r.techniques,
        "related": r.related.iter().map(|e| json!({"type": e.kind, "id": e.id})).collect::<Vec<_>>(),
        "endpoints": r.usage.endpoints,
        "clients": r.usage.clients,
        "reasons": reasons,
    })
}

pub fn write(path: &Path, data: &ReportData) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| write_error(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    for r in data.shown() {
        serde_json::to_writer(&mut w, &to_json(r, data)).map_err(|e| write_error(path, e))?;
        w.write_all(b"\n").map_err(|e| write_error(path, e))?;
    }
    w.flush().map_err(|e| write_error(path, e))
}
