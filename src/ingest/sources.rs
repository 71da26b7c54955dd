//! Readers for sources other than the canonical format: anything a mapping profile describes
//! (CSV, JSON lines, JSON arrays, CloudTrail's `{"Records": [...]}`) and syslog auth logs.
//! Line numbers are physical lines, except inside a JSON array or `Records` file, where they are
//! the record's 1-based position.

use std::io::BufRead;

use serde_json::Value;

use super::authlog::{self, Line};
use super::readers::{Sink, csv_records, for_each_json_object, for_each_line};
use crate::normalize::profile::{CsvRecord, Profile};

/// JSON records through a profile: JSON lines, or one JSON document holding an array of records.
pub fn read_json(mut reader: Box<dyn BufRead + Send>, profile: &Profile, sink: &mut Sink) {
    let container = reader.fill_buf().is_ok_and(is_container);
    if !container {
        for_each_json_object(reader, sink, |sink, line, v, text| {
            sink.mapped(line, profile.apply(&v), || text.to_vec())
        });
        return;
    }
    let max = sink.max_record;
    let (seen, stopped) = super::json_doc::for_each_record(reader, max, &mut |i, v| {
        if v.is_object() {
            sink.mapped(i, profile.apply(&v), || v.to_string().into_bytes());
        } else {
            let raw = v.to_string();
            sink.reject(i, "expected a JSON object".into(), raw.as_bytes(), false);
        }
    });
    if let Some(why) = stopped {
        // Records are numbered by their place in the array; the one that broke is the next.
        sink.reject(
            seen + 1,
            format!("invalid JSON document: {why}"),
            b"",
            false,
        );
    }
}

/// Whether a JSON stream is one document holding records rather than one record per line: an
/// array; CloudTrail's `{"Records": [...]}`; Azure Monitor's `{"records": [...]}`; a Microsoft
/// Graph response saved as it came, `{"@odata.context": …, "value": [...]}` (what
/// `auditLogs/signIns` and `directoryAudits` return), or its `{"value": [...]}`. A record
/// member must hold an array: the canonical schema's own `records` field is a number.
pub fn is_container(head: &[u8]) -> bool {
    let t = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let t = t.trim_start_matches('\u{feff}').trim_start();
    let Some(body) = t.strip_prefix('{') else {
        return t.starts_with('[');
    };
    let array_member = |at: &str, key: &str| {
        at.strip_prefix(key)
            .map(|rest| rest.trim_start())
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest.trim_start().starts_with('['))
    };
    let first = body.trim_start();
    if ["\"Records\"", "\"records\"", "\"value\""]
        .iter()
        .any(|key| array_member(first, key))
    {
        return true;
    }
    first.starts_with("\"@odata.context\"")
        && body
            .match_indices("\"value\"")
            .any(|(i, _)| array_member(&body[i..], "\"value\""))
}

/// CSV through a profile (its own delimiter; header names as the profile's field paths).
pub fn read_profile_csv(reader: Box<dyn BufRead + Send>, profile: &Profile, sink: &mut Sink) {
    let delimiter = profile.delimiter.unwrap_or(',') as u8;
    let mut header: Vec<String> = Vec::new();
    let has_header = profile.has_header;
    csv_records(
        reader,
        delimiter,
        has_header,
        sink,
        |sink, line, head, record, raw| {
            if header.is_empty() {
                header = head
                    .iter()
                    .map(|h| String::from_utf8_lossy(h).trim().to_string())
                    .collect();
            }
            let Ok(row) = csv::StringRecord::from_byte_record(record.to_record()) else {
                return sink.reject(line, "invalid UTF-8".into(), &raw(), false);
            };
            match profile.apply(&CsvRecord {
                header: &header,
                row: &row,
            }) {
                Ok(Some(r)) => sink.row(line, &r, raw),
                Ok(None) => sink.ignore(),
                Err(reason) => sink.reject(line, reason, &raw(), false),
            }
        },
    );
}

/// `journalctl -o json`: each entry becomes the syslog line it stands for (RFC 3339 time from
/// `__REALTIME_TIMESTAMP`, host, `SYSLOG_IDENTIFIER[pid]`, `MESSAGE`) and is read like one, so
/// the journal and `/var/log/auth.log` give the same events.
pub fn read_journald(reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let mut years = authlog::Years::starting(None);
    for_each_json_object(reader, sink, |sink, line, entry, text| {
        let field = |k: &str| entry.get(k).and_then(Value::as_str);
        let micros = field("__REALTIME_TIMESTAMP").and_then(|t| t.parse::<i64>().ok());
        let stamp = micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        let (Some(stamp), Some(message)) = (stamp, field("MESSAGE")) else {
            let reason = "journal entry without a readable __REALTIME_TIMESTAMP or a text MESSAGE";
            return sink.reject(line, reason.into(), text, false);
        };
        let ident = field("SYSLOG_IDENTIFIER").or(field("_COMM")).unwrap_or("-");
        let pid = field("SYSLOG_PID").or(field("_PID"));
        let host = field("_HOSTNAME").unwrap_or("-");
        let syslog = match pid {
            Some(pid) => format!("{stamp} {host} {ident}[{pid}]: {message}"),
            None => format!("{stamp} {host} {ident}: {message}"),
        };
        match authlog::parse(&syslog, &mut years) {
            Ok(Line::Event(row)) => sink.row(line, &row, || text.to_vec()),
            // Another unit's entry, or an identifier syslog would not print: not an auth event.
            Ok(Line::Other) | Err(_) => sink.ignore(),
        }
    });
}

/// syslog lines; lines of other programs are counted as ignored, not rejected.
pub fn read_authlog(reader: Box<dyn BufRead + Send>, year: Option<i32>, sink: &mut Sink) {
    let mut years = authlog::Years::starting(year);
    for_each_line(reader, sink, |sink, line, text| {
        let Ok(s) = std::str::from_utf8(text) else {
            return sink.reject(line, "invalid UTF-8".into(), text, false);
        };
        match authlog::parse(s, &mut years) {
            Ok(Line::Event(row)) => sink.row(line, &row, || text.to_vec()),
            Ok(Line::Other) => sink.ignore(),
            Err(reason) => sink.reject(line, reason, text, false),
        }
    });
}

#[cfg(test)]
mod container_tests {
    use super::is_container;

    /// Documents of records by their envelopes, and JSON lines whose first member merely has one
    /// of those names.
    #[test]
    fn envelopes_of_records_are_told_from_json_lines() {
        for doc in [
            "[{\"a\":1}]",
            "\u{feff} {\"Records\": [{\"a\":1}]}",
            "{\"records\":[{\"time\":\"x\"}]}",
            "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns\",\"value\" : [{}]}",
            "{\"value\":[{\"id\":\"1\"}]}",
        ] {
            assert!(is_container(doc.as_bytes()), "{doc}");
        }
        for lines in [
            "{\"records\": 5, \"timestamp\": \"2025-03-01T00:00:00Z\"}\n",
            "{\"value\": \"x\"}\n",
            "{\"@odata.context\": \"y\", \"id\": \"1\"}\n",
            "{\"eventVersion\": \"1.08\"}\n",
        ] {
            assert!(!is_container(lines.as_bytes()), "{lines}");
        }
    }
}
