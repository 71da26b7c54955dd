//! Format detection from content. Exports get renamed, compressed and mixed, so the first bytes
//! decide, not the file name; a file nothing recognises is skipped and reported, never guessed.

use serde_json::Value;

use super::ReadOptions;
use super::{authlog, windows, windows_xml};
use crate::normalize::profile::{Record, VENDORS};

/// How one file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Canonical CSV (`docs/schema.md`).
    Csv,
    /// Canonical JSON lines.
    JsonLines,
    /// AWS CloudTrail: `{"Records": [...]}`, a JSON array, or one record per line.
    CloudTrail,
    /// Okta System Log: a JSON array or one event per line.
    Okta,
    /// syslog auth.log / secure.
    AuthLog,
    /// The systemd journal as `journalctl -o json` writes it: one entry per line, its `MESSAGE`
    /// read as the syslog line it would have been.
    Journald,
    /// Windows event logs in their binary `.evtx` form.
    Evtx,
    /// Windows events exported as JSON lines (`evtx_dump -o jsonl`, Winlogbeat).
    Windows,
    /// Windows events exported as XML (`wevtutil /f:xml`, `evtx_dump -o xml`).
    WindowsXml,
    /// Parquet: the canonical schema, OCSF (Security Lake), or what a JSON profile maps.
    Parquet,
    /// A built-in profile of [`crate::normalize::profile::VENDORS`] (Entra ID sign-ins, audits),
    /// by its place in that list.
    Vendor(u8),
    /// A user mapping profile (`--profile`), CSV or JSON.
    Profile,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::CloudTrail => "cloudtrail",
            Format::Okta => "okta",
            Format::AuthLog => "authlog",
            Format::Journald => "journald",
            Format::Evtx => "evtx",
            Format::Windows => "windows",
            Format::WindowsXml => "windows-xml",
            Format::Parquet => "parquet",
            Format::Vendor(i) => VENDORS.get(usize::from(i)).copied().unwrap_or("vendor"),
            Format::Profile => "profile",
        }
    }

    /// Values of `--source`.
    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "canonical" | "csv" | "jsonl" => Some(Format::Csv),
            "cloudtrail" => Some(Format::CloudTrail),
            "okta" => Some(Format::Okta),
            "authlog" | "syslog" => Some(Format::AuthLog),
            "journald" | "journal" => Some(Format::Journald),
            "evtx" => Some(Format::Evtx),
            "windows" | "winlogbeat" => Some(Format::Windows),
            "windows-xml" => Some(Format::WindowsXml),
            "parquet" => Some(Format::Parquet),
            "profile" => Some(Format::Profile),
            other => VENDORS
                .iter()
                .position(|v| *v == other)
                .map(|i| Format::Vendor(i as u8)),
        }
    }
}

/// Lines of the head that decide the format by majority.
const SAMPLE_LINES: usize = 64;

/// What a file's name says it holds, once compression suffixes are off: only a tie-breaker when
/// the sampled lines split evenly, never more (exports get renamed).
fn extension_says(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let name = name
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .trim_end_matches(".zstd");
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json" | "jsonl" | "ndjson") => Some("json"),
        Some("log" | "syslog") => Some("syslog"),
        _ => None,
    }
}

/// Decides the format from the first bytes of the decompressed file: a CSV by its header (the
/// first line), JSON lines by the first of the sampled lines that is a JSON object, syslog when
/// most sampled lines look like it (`name`'s extension breaks an even split).
pub fn detect(head: &[u8], name: &str, opts: &ReadOptions) -> Result<Format, String> {
    if head.starts_with(super::parquet::MAGIC) && opts.source.is_none_or(|f| f == Format::Parquet) {
        return Ok(Format::Parquet);
    }
    // Binary: no lines to sample. A forced JSON-export source still reads the binary form.
    if head.starts_with(windows::EVTX_MAGIC)
        && opts
            .source
            .is_none_or(|f| matches!(f, Format::Evtx | Format::Windows))
    {
        return Ok(Format::Evtx);
    }
    let says = extension_says(name);
    let majority = |votes: usize, of: usize, kind: &str| {
        votes * 2 > of || (votes > 0 && votes * 2 == of && says == Some(kind))
    };
    let text = String::from_utf8_lossy(head);
    let body = text.trim_start_matches('\u{feff}').trim_start();
    let first_line = body.lines().next().unwrap_or("");
    // A sample of lines, not the first alone: one broken or foreign first line used to decide
    // (and skip) a whole file.
    let sample: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(SAMPLE_LINES)
        .collect();
    let json_lines = sample.iter().filter(|l| l.starts_with('{')).count();
    let json = body.starts_with('{')
        || body.starts_with('[')
        || majority(json_lines, sample.len(), "json");
    if let Some(forced) = opts.source {
        return Ok(match forced {
            Format::Csv | Format::JsonLines if json => Format::JsonLines,
            Format::Csv | Format::JsonLines => Format::Csv,
            other => other,
        });
    }
    if body.is_empty() {
        return Err("empty file".into());
    }
    if windows_xml::looks_like(body) {
        return Ok(Format::WindowsXml);
    }
    let user_json = opts.profile.as_ref().filter(|p| p.format == "json");
    let user_csv = opts.profile.as_ref().filter(|p| p.format == "csv");
    if json {
        let container = super::sources::is_container(body.as_bytes());
        if container {
            // Only the head is at hand: recognise by the keys the source always writes.
            if body.contains("\"eventVersion\"") && body.contains("\"eventName\"") {
                return Ok(Format::CloudTrail);
            }
            if body.contains("\"published\"") && body.contains("\"eventType\"") {
                return Ok(Format::Okta);
            }
            if let Some(i) = opts.vendors.iter().position(|p| p.recognizes_text(body)) {
                return Ok(Format::Vendor(i as u8));
            }
            if user_json.is_some() {
                return Ok(Format::Profile);
            }
            return Err("JSON array of an unknown source (use --source or --profile)".into());
        }
        let record: Value = sample
            .iter()
            .find_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(Value::is_object)
            })
            .ok_or_else(|| format!("none of the first {} lines is a JSON object", sample.len()))?;
        if user_json.is_some_and(|p| p.recognizes(&record)) {
            return Ok(Format::Profile);
        }
        if record.get("timestamp").is_some() && record.get("event_type").is_some() {
            return Ok(Format::JsonLines);
        }
        if windows::recognizes(&record) {
            return Ok(Format::Windows);
        }
        if record.get("__REALTIME_TIMESTAMP").is_some() && record.get("MESSAGE").is_some() {
            return Ok(Format::Journald);
        }
        if opts.cloudtrail.recognizes(&record) {
            return Ok(Format::CloudTrail);
        }
        if opts.okta.recognizes(&record) {
            return Ok(Format::Okta);
        }
        if let Some(i) = opts.vendors.iter().position(|p| p.recognizes(&record)) {
            return Ok(Format::Vendor(i as u8));
        }
        if user_json.is_some() {
            return Ok(Format::Profile);
        }
        return Err(
            "JSON lines without timestamp/event_type of a known source (use --source or --profile)"
                .into(),
        );
    }
    let syslog = sample.iter().filter(|l| authlog::looks_like(l)).count();
    if majority(syslog, sample.len(), "syslog") {
        return Ok(Format::AuthLog);
    }
    let delimiter = user_csv.and_then(|p| p.delimiter).unwrap_or(',');
    let header: Vec<String> = first_line
        .split(delimiter)
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    if let Some(p) = user_csv {
        let record = HeaderOnly(&header);
        if p.recognizes(&record) || !header.iter().any(|h| h == "event_type") {
            return Ok(Format::Profile);
        }
    }
    if header.iter().any(|h| h == "timestamp") && header.iter().any(|h| h == "event_type") {
        return Ok(Format::Csv);
    }
    Err("not a known format: no timestamp/event_type header, not syslog, not JSON (use --source or --profile)".into())
}

/// A CSV header as a record whose every column is present (for `recognize.keys`).
struct HeaderOnly<'a>(&'a [String]);

impl Record for HeaderOnly<'_> {
    fn get(&self, path: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.0
            .iter()
            .any(|h| h.eq_ignore_ascii_case(path))
            .then_some(std::borrow::Cow::Borrowed(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::TimeParser;

    /// Half syslog, half something else: the name breaks the tie, and only the tie.
    #[test]
    fn extension_breaks_an_even_split_only() {
        let opts =
            ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).expect("options");
        let even =
            b"Mar  3 10:01:02 web1 sshd[1]: Accepted publickey for a from 192.0.2.1 port 1 ssh2\n\
            garbage one\n\
            Mar  3 10:01:03 web1 sshd[1]: Accepted publickey for a from 192.0.2.1 port 1 ssh2\n\
            garbage two\n";
        assert_eq!(detect(even, "auth.log.gz", &opts), Ok(Format::AuthLog));
        assert!(detect(even, "auth.txt", &opts).is_err());
        let mostly =
            b"Mar  3 10:01:02 web1 sshd[1]: Accepted publickey for a from 192.0.2.1 port 1 ssh2\n\
            garbage one\n\
            Mar  3 10:01:03 web1 sshd[1]: Accepted publickey for a from 192.0.2.1 port 1 ssh2\n";
        assert_eq!(detect(mostly, "export.csv", &opts), Ok(Format::AuthLog));
    }
}
