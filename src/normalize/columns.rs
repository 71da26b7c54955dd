//! Column-wise accumulation of normalised events and conversion into a polars frame.

use polars::prelude::*;

use super::schema::{DAY_MS, Field, RawRow, col};
use super::time::TimeParser;
use crate::error::{FrameContext, Result};

/// Normalised events of one file (or several, once appended), stored column-wise.
#[derive(Debug, Default)]
pub struct EventColumns {
    ts: Vec<i64>,
    event_type: Vec<String>,
    principal: Vec<Option<String>>,
    credential: Vec<Option<String>>,
    token: Vec<Option<String>>,
    source_ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    action: Vec<Option<String>>,
    target: Vec<Option<String>>,
    success: Vec<bool>,
    records: Vec<Option<i64>>,
    bytes: Vec<Option<i64>>,
    file: Vec<u32>,
    line: Vec<u64>,
}

impl EventColumns {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Normalises one raw row, or says why it cannot be. Nothing is pushed on error, so the
    /// columns always stay the same length.
    pub fn push(
        &mut self,
        mut row: RawRow,
        time: &TimeParser,
        file: u32,
        line: u64,
    ) -> Result<(), String> {
        let ts = match row.get(Field::Timestamp) {
            Some(s) => time.parse(s)?,
            None => return Err("missing timestamp".into()),
        };
        let event_type = match row.get(Field::EventType) {
            Some(s) => s.trim().to_ascii_lowercase(),
            None => return Err("missing event_type".into()),
        };
        let success = parse_outcome(row.get(Field::Outcome))?;
        let records = parse_count(row.get(Field::Records), "records")?;
        let bytes = parse_count(row.get(Field::Bytes), "bytes")?;
        self.ts.push(ts);
        self.event_type.push(event_type);
        self.principal.push(row.take(Field::Principal));
        self.credential.push(row.take(Field::CredentialId));
        self.token.push(row.take(Field::TokenId));
        self.source_ip.push(row.take(Field::SourceIp));
        self.user_agent.push(row.take(Field::UserAgent));
        self.action.push(row.take(Field::Action));
        self.target.push(row.take(Field::TargetAccount));
        self.success.push(success);
        self.records.push(records);
        self.bytes.push(bytes);
        self.file.push(file);
        self.line.push(line);
        Ok(())
    }

    /// Builds the frame the detectors read. `day` (UTC days since the epoch) is derived here once
    /// because almost every detector buckets by it.
    pub fn into_frame(self) -> Result<DataFrame> {
        let day: Vec<i64> = self.ts.iter().map(|t| t.div_euclid(DAY_MS)).collect();
        let columns = vec![
            Column::new(col::TS.into(), self.ts),
            Column::new(col::DAY.into(), day),
            Column::new(col::EVENT_TYPE.into(), self.event_type),
            Column::new(col::PRINCIPAL.into(), self.principal),
            Column::new(col::CREDENTIAL.into(), self.credential),
            Column::new(col::TOKEN.into(), self.token),
            Column::new(col::SOURCE_IP.into(), self.source_ip),
            Column::new(col::USER_AGENT.into(), self.user_agent),
            Column::new(col::ACTION.into(), self.action),
            Column::new(col::TARGET.into(), self.target),
            Column::new(col::SUCCESS.into(), self.success),
            Column::new(col::RECORDS.into(), self.records),
            Column::new(col::BYTES.into(), self.bytes),
            Column::new(col::FILE.into(), self.file),
            Column::new(col::LINE.into(), self.line),
        ];
        DataFrame::new_infer_height(columns).stage("building the event frame")
    }
}

/// `success`/`failure` and the usual spellings of both; missing means success. Anything else is a
/// reject rather than a guess, because a wrong guess would hide or invent a failed login.
fn parse_outcome(value: Option<&str>) -> Result<bool, String> {
    let Some(v) = value else { return Ok(true) };
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "success" | "succeeded" | "ok" | "allow" | "allowed" | "true" | "pass" => Ok(true),
        "failure" | "fail" | "failed" | "deny" | "denied" | "error" | "false" | "reject"
        | "rejected" => Ok(false),
        other => Err(format!("unknown outcome {other:?}")),
    }
}

fn parse_count(value: Option<&str>, what: &str) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{what} is not an integer: {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_spellings() {
        assert_eq!(parse_outcome(None), Ok(true));
        assert_eq!(parse_outcome(Some("FAILURE")), Ok(false));
        assert_eq!(parse_outcome(Some("Success")), Ok(true));
        assert!(parse_outcome(Some("maybe")).is_err());
    }
}
