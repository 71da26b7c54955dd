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
    network: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    action: Vec<Option<String>>,
    target: Vec<Option<String>>,
    target_num: Vec<Option<i64>>,
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
        let ip = row.take(Field::SourceIp);
        self.network.push(ip.as_deref().and_then(network_of));
        self.source_ip.push(ip);
        self.user_agent.push(row.take(Field::UserAgent));
        self.action.push(row.take(Field::Action));
        let target = row.take(Field::TargetAccount);
        self.target_num
            .push(target.as_deref().and_then(account_number));
        self.target.push(target);
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
            Column::new(col::NETWORK.into(), self.network),
            Column::new(col::USER_AGENT.into(), self.user_agent),
            Column::new(col::ACTION.into(), self.action),
            Column::new(col::TARGET.into(), self.target),
            Column::new(col::TARGET_NUM.into(), self.target_num),
            Column::new(col::SUCCESS.into(), self.success),
            Column::new(col::RECORDS.into(), self.records),
            Column::new(col::BYTES.into(), self.bytes),
            Column::new(col::FILE.into(), self.file),
            Column::new(col::LINE.into(), self.line),
        ];
        DataFrame::new_infer_height(columns).stage("building the event frame")
    }
}

/// The /24 (IPv4) or /64 (IPv6) an external address belongs to: scrapers rotate addresses inside
/// one provider's block, so the block is an entity of its own. Internal addresses get none: a
/// company's own /24 holds whole teams, and lumping them together says nothing.
pub fn network_of(ip: &str) -> Option<String> {
    let addr = ip.trim().parse::<std::net::IpAddr>().ok()?;
    if is_internal(&addr) {
        return None;
    }
    match addr {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// Private, loopback, link-local and unique-local addresses.
pub fn is_internal(addr: &std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The numeric part of an account id (`C00001234` → 1234), used to spot sequential walks.
pub fn account_number(account: &str) -> Option<i64> {
    let digits: String = account.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.parse().ok()
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
    fn networks_and_account_numbers() {
        assert_eq!(
            network_of("203.0.113.47").as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of("2001:db8:1:2:3::4").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(network_of("not-an-ip"), None);
        assert_eq!(network_of("10.20.0.15"), None);
        assert_eq!(account_number("C00001234"), Some(1234));
        assert_eq!(account_number("host-a"), None);
    }

    #[test]
    fn outcome_spellings() {
        assert_eq!(parse_outcome(None), Ok(true));
        assert_eq!(parse_outcome(Some("FAILURE")), Ok(false));
        assert_eq!(parse_outcome(Some("Success")), Ok(true));
        assert!(parse_outcome(Some("maybe")).is_err());
    }
}
