//! Mapping profiles: a TOML file that maps an export's columns or JSON paths onto the canonical
//! schema (renames, constants, time formats, value maps, a filter). The built-in CloudTrail and
//! Okta readers are profiles too (`profiles/*.toml`, embedded), so users extend audithound the
//! same way it reads its own sources. Reference and examples: `docs/profiles.md`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDateTime, TimeZone};
use serde::Deserialize;
use serde_json::Value;

use super::schema::{Field, RawRow};
use crate::error::{Error, Result};

/// Where a canonical field's value comes from: a column / JSON path, a template with `{path}`
/// placeholders, or a list of those tried in order (first non-empty wins).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Spec {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// strftime format (`%d/%m/%Y %H:%M:%S`), or `epoch_s` / `epoch_ms`; absent = any documented form.
    pub format: Option<String>,
    /// Zone of naive times in this source (default: `--timezone`).
    pub timezone: Option<String>,
    /// With `epoch_s` / `epoch_ms`: the instant (RFC 3339) the numbers count from, for exports
    /// whose times are relative (the LANL authentication data counts seconds from 1). Without
    /// it they count from 1970, and a small number is rejected as outside the plausible range.
    pub origin: Option<String>,
    /// `origin` as epoch milliseconds (0 without one), parsed once at load rather than for
    /// every record.
    #[serde(skip)]
    origin_ms: i64,
}

/// Keep a record only if the value at `field` is one of `equals` (or none of them with `not`).
/// `field` may be a list of paths, the first present one deciding (exports of one source differ).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub field: Spec,
    pub equals: Vec<String>,
    #[serde(default)]
    pub not: bool,
}

impl Filter {
    fn matches(&self, record: &dyn Record) -> bool {
        let v = resolve(&self.field, record);
        let hit = v
            .as_deref()
            .is_some_and(|v| self.equals.iter().any(|e| e == v));
        hit != self.not
    }
}

/// The end of the `action` every reader gives a login for a user name that does not exist
/// (`sshd:invalid_user`, `okta:invalid_user`, …).
pub const INVALID_USER: &str = "invalid_user";
/// In an action (`sshd:notice:invalid_user`), marks a line that announces an attempt its source
/// also logs as a failure of its own line; see [`crate::detect::auth_attacks`].
pub const NOTICE: &str = ":notice:";

/// How to recognise the source from one record: all these keys / paths present, or all of one
/// of the `any` sets (the same source exported by different tools names its keys differently).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recognize {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub any: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// `csv` or `json` (JSON lines, a JSON array, or `{"Records": [...]}`).
    pub format: String,
    #[serde(default)]
    pub delimiter: Option<char>,
    /// `false` for a CSV export without a header row: its columns are then named by their
    /// 1-based position (`timestamp = "1"`), and the first line is a record.
    #[serde(default = "header_row")]
    pub has_header: bool,
    #[serde(default)]
    pub fields: BTreeMap<String, Spec>,
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    #[serde(default)]
    pub time: TimeSpec,
    /// Per canonical field: source value → canonical value; the key `"*"` is the default.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub filter: Vec<Filter>,
    #[serde(default)]
    pub recognize: Recognize,
    /// When this matches, the record is a login for a user name that does not exist, and its
    /// `action` becomes `<name>:invalid_user` (what the username-enumeration rule counts).
    #[serde(default)]
    pub invalid_user: Option<Filter>,
    /// Where a record carries a JWT (`Bearer` prefix allowed): its header and claims become the
    /// paths `jwt.header.*` and `jwt.claims.*` (the signature is never read; see
    /// [`super::jwt`]).
    #[serde(default)]
    pub jwt: Option<Spec>,
    /// Per canonical field, a regex whose first group is kept of the mapped value (an account
    /// id out of a request path); no match leaves the field absent.
    #[serde(default)]
    pub extract: BTreeMap<String, String>,
    #[serde(skip)]
    extractors: Vec<(Field, regex::Regex)>,
    /// Per canonical field, regex replacements applied in order to the mapped value (concrete
    /// request paths into endpoint templates: `/members/83422` → `/members/{id}`).
    #[serde(default)]
    pub replace: BTreeMap<String, Vec<(String, String)>>,
    #[serde(skip)]
    replacers: Vec<(Field, regex::Regex, String)>,
    #[serde(skip)]
    tz: Option<chrono_tz::Tz>,
}

fn header_row() -> bool {
    true
}

/// A record of the source: a CSV row by header, or a JSON object by dotted path.
pub trait Record {
    fn get(&self, path: &str) -> Option<Cow<'_, str>>;
}

/// A record with a decoded JWT beside it.
struct WithJwt<'a> {
    record: &'a dyn Record,
    header: Value,
    claims: Value,
}

impl Record for WithJwt<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        if let Some(key) = path.strip_prefix("jwt.header.") {
            return Record::get(&self.header, key);
        }
        if let Some(key) = path.strip_prefix("jwt.claims.") {
            return Record::get(&self.claims, key);
        }
        self.record.get(path)
    }
}

/// A CSV row with its header.
pub struct CsvRecord<'a> {
    pub header: &'a [String],
    pub row: &'a csv::StringRecord,
}

impl Record for CsvRecord<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let i = self
            .header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(path))?;
        self.row.get(i).map(Cow::Borrowed)
    }
}

impl Record for Value {
    /// `a.b.0.c`: object keys and array indices.
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let mut v = self;
        for part in path.split('.') {
            v = match v {
                Value::Object(m) => m.get(part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        match v {
            Value::Null => None,
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            other => Some(Cow::Owned(other.to_string())),
        }
    }
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile> {
        let text = crate::ingest::decompress::read_text(path)?;
        Profile::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Profile> {
        let bad = |line: u64, reason: String| Error::ContextLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut p: Profile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].lines().count() as u64);
            bad(line, e.message().to_string())
        })?;
        if !matches!(p.format.as_str(), "csv" | "json") {
            return Err(bad(
                0,
                format!("format must be csv or json, not {:?}", p.format),
            ));
        }
        for name in p
            .fields
            .keys()
            .chain(p.constants.keys())
            .chain(p.values.keys())
            .chain(p.extract.keys())
            .chain(p.replace.keys())
        {
            if Field::from_name(name).is_none() {
                return Err(bad(
                    0,
                    format!("{name:?} is not a canonical field (see docs/schema.md)"),
                ));
            }
        }
        for (name, pattern) in &p.extract {
            let re = regex::Regex::new(pattern)
                .ok()
                .filter(|re| re.captures_len() > 1)
                .ok_or_else(|| {
                    bad(
                        0,
                        format!("extract.{name}: {pattern:?} is not a regex with a group"),
                    )
                })?;
            if let Some(field) = Field::from_name(name) {
                p.extractors.push((field, re));
            }
        }
        for (name, rules) in &p.replace {
            for (pattern, with) in rules {
                let re = regex::Regex::new(pattern)
                    .map_err(|e| bad(0, format!("replace.{name}: {pattern:?}: {e}")))?;
                if let Some(field) = Field::from_name(name) {
                    p.replacers.push((field, re, with.clone()));
                }
            }
        }
        if let Some(tz) = &p.time.timezone {
            p.tz = Some(
                tz.parse()
                    .map_err(|_| bad(0, format!("unknown time zone {tz:?}")))?,
            );
        }
        // Checked here, not row by row: a bad delimiter or time format accepted at load rejected
        // every record of every file later, one reject per line.
        if let Some(d) = p.delimiter
            && (!d.is_ascii() || matches!(d, '"' | '\n' | '\r'))
        {
            return Err(bad(
                0,
                format!(
                    "delimiter {d:?} must be one ASCII character other than a quote or line break"
                ),
            ));
        }
        if let Some(origin) = p.time.origin.as_deref() {
            if !matches!(p.time.format.as_deref(), Some("epoch_s" | "epoch_ms")) {
                return Err(bad(
                    0,
                    "time origin needs format epoch_s or epoch_ms".to_string(),
                ));
            }
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(origin) else {
                return Err(bad(
                    0,
                    format!("time origin {origin:?} is not an RFC 3339 instant"),
                ));
            };
            p.time.origin_ms = at.timestamp_millis();
        }
        if let Some(f) = p.time.format.as_deref()
            && !matches!(f, "epoch_s" | "epoch_ms")
        {
            let items: Vec<chrono::format::Item> = chrono::format::StrftimeItems::new(f).collect();
            let broken = items
                .iter()
                .any(|i| matches!(i, chrono::format::Item::Error));
            let dated = items.iter().any(|i| {
                matches!(
                    i,
                    chrono::format::Item::Numeric(..) | chrono::format::Item::Fixed(..)
                )
            });
            if broken || !dated {
                return Err(bad(
                    0,
                    format!(
                        "time format {f:?} is not a strftime format with date fields (or epoch_s / epoch_ms)"
                    ),
                ));
            }
        }
        Ok(p)
    }

    /// The top-level keys (columns) any of this profile's paths read: what a columnar reader
    /// must load.
    pub fn top_level_keys(&self) -> Vec<String> {
        let mut paths: Vec<&str> = Vec::new();
        let specs = self
            .fields
            .values()
            .chain(self.jwt.iter())
            .chain(self.filter.iter().map(|f| &f.field))
            .chain(self.invalid_user.iter().map(|f| &f.field));
        for spec in specs {
            let list: &[String] = match spec {
                Spec::One(s) => std::slice::from_ref(s),
                Spec::Many(v) => v,
            };
            for item in list {
                if item.contains('{') {
                    paths.extend(item.split('{').skip(1).filter_map(|p| p.split('}').next()));
                } else {
                    paths.push(item);
                }
            }
        }
        let mut tops: Vec<String> = paths
            .iter()
            .map(|p| p.split('.').next().unwrap_or(p).to_string())
            .collect();
        tops.sort();
        tops.dedup();
        tops
    }

    /// True if `record` looks like this source (all `recognize.keys`, or all of one `any` set,
    /// present).
    pub fn recognizes(&self, record: &dyn Record) -> bool {
        let all =
            |keys: &[String]| !keys.is_empty() && keys.iter().all(|k| record.get(k).is_some());
        all(&self.recognize.keys) || self.recognize.any.iter().any(|set| all(set))
    }

    /// True if the head of a JSON document (an array, whose first record may be cut off) names
    /// every top-level key of one recognition set.
    pub fn recognizes_text(&self, head: &str) -> bool {
        let named = |keys: &[String]| {
            !keys.is_empty()
                && keys.iter().all(|k| {
                    let top = k.split('.').next().unwrap_or(k);
                    head.contains(&format!("\"{top}\""))
                })
        };
        named(&self.recognize.keys) || self.recognize.any.iter().any(|set| named(set))
    }

    /// Maps one record. `Ok(None)` means the filter dropped it (counted as ignored, not rejected).
    pub fn apply(&self, record: &dyn Record) -> Result<Option<RawRow<'static>>, String> {
        let token = self.jwt.as_ref().and_then(|spec| resolve(spec, record));
        match token.as_deref().and_then(super::jwt::decode) {
            Some((header, claims)) => self.apply_to(&WithJwt {
                record,
                header,
                claims,
            }),
            None => self.apply_to(record),
        }
    }

    fn apply_to(&self, record: &dyn Record) -> Result<Option<RawRow<'static>>, String> {
        if self.filter.iter().any(|f| !f.matches(record)) {
            return Ok(None);
        }
        let mut row = RawRow::default();
        for field in Field::ALL {
            let name = field.name();
            let mut value: Option<String> =
                self.fields.get(name).and_then(|spec| resolve(spec, record));
            if let Some(map) = self.values.get(name) {
                let key = value.clone().unwrap_or_default();
                value = map.get(&key).or_else(|| map.get("*")).cloned().or(value);
            }
            for (_, re, with) in self.replacers.iter().filter(|(f, ..)| *f == field) {
                value = value.map(|v| re.replace_all(&v, with.as_str()).into_owned());
            }
            if let Some((_, re)) = self.extractors.iter().find(|(f, _)| *f == field) {
                value = value
                    .as_deref()
                    .and_then(|v| re.captures(v))
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_string());
            }
            if value.as_deref().is_none_or(str::is_empty) {
                value = self.constants.get(name).cloned();
            }
            if let Some(v) = value {
                let v = if field == Field::Timestamp {
                    self.timestamp(&v)?
                } else {
                    v
                };
                row.set(field, v);
            }
        }
        if self
            .invalid_user
            .as_ref()
            .is_some_and(|f| f.matches(record))
        {
            row.set(Field::Action, format!("{}:{}", self.name, INVALID_USER));
        }
        Ok(Some(row))
    }

    /// Reduces a source timestamp to epoch milliseconds text when the profile names a format.
    fn timestamp(&self, v: &str) -> Result<String, String> {
        let Some(fmt) = self.time.format.as_deref() else {
            return Ok(v.to_string());
        };
        let num = || {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("timestamp {v:?} is not a number"))
        };
        let origin = self.time.origin_ms;
        let from_origin = |ms: f64| {
            (ms.round() as i64)
                .checked_add(origin)
                .ok_or_else(|| format!("timestamp {v:?} is out of range"))
        };
        let ms = match fmt {
            "epoch_s" => from_origin(num()? * 1000.0)?,
            "epoch_ms" => from_origin(num()?)?,
            f if f.contains("%z") || f.contains("%:z") => chrono::DateTime::parse_from_str(v, f)
                .map_err(|e| format!("timestamp {v:?} does not match {f:?}: {e}"))?
                .timestamp_millis(),
            f => {
                let naive = NaiveDateTime::parse_from_str(v.trim(), f)
                    .map_err(|e| format!("timestamp {v:?} does not match {f:?}: {e}"))?;
                match self.tz {
                    Some(tz) => tz
                        .from_local_datetime(&naive)
                        .earliest()
                        .ok_or_else(|| format!("local time {v:?} does not exist in {tz}"))?
                        .timestamp_millis(),
                    // Left naive: the run's --timezone applies, like any naive timestamp.
                    None => return Ok(naive.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
                }
            }
        };
        // Canonical epoch text is read as milliseconds from 1e11 on; older instants get seconds.
        Ok(if ms.abs() >= 100_000_000_000 {
            ms.to_string()
        } else {
            format!("{}.{:03}", ms / 1000, ms % 1000)
        })
    }
}

fn resolve(spec: &Spec, record: &dyn Record) -> Option<String> {
    let candidates: &[String] = match spec {
        Spec::One(s) => std::slice::from_ref(s),
        Spec::Many(v) => v,
    };
    candidates.iter().find_map(|c| {
        let v = if c.contains('{') {
            template(c, record)
        } else {
            record.get(c).map(Cow::into_owned)
        };
        v.filter(|s| !s.is_empty())
    })
}

/// `"{eventName}:{requestParameters.status}"` → `"UpdateAccessKey:Inactive"` (absent parts
/// empty); `None` when every placeholder is absent, so a list of templates for different export
/// shapes falls through to the one that fits.
fn template(t: &str, record: &dyn Record) -> Option<String> {
    let mut out = String::new();
    let mut rest = t;
    let mut found = false;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        if let Some(v) = record.get(&rest[open + 1..close]) {
            out.push_str(&v);
            found = true;
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    found.then_some(out)
}

/// The built-in profiles other than CloudTrail and Okta (which have formats of their own), in the
/// order detection tries them.
pub const VENDORS: [&str; 4] = ["ocsf", "entra-signin", "entra-audit", "gateway"];

/// The profiles shipped with audithound, as data files embedded at build time.
pub fn builtin(name: &str) -> Option<Profile> {
    let text = match name {
        "cloudtrail" => include_str!("../../profiles/cloudtrail.toml"),
        "okta" => include_str!("../../profiles/okta.toml"),
        "entra-signin" => include_str!("../../profiles/entra-signin.toml"),
        "entra-audit" => include_str!("../../profiles/entra-audit.toml"),
        "gateway" => include_str!("../../profiles/gateway.toml"),
        "ocsf" => include_str!("../../profiles/ocsf.toml"),
        _ => return None,
    };
    Profile::parse(text, Path::new(name)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        assert!(builtin("cloudtrail").is_some());
        assert!(builtin("okta").is_some());
        for name in VENDORS {
            assert!(builtin(name).is_some(), "{name}");
        }
    }

    #[test]
    fn paths_templates_values_and_filters() {
        let p = Profile::parse(
            r#"
name = "t"
format = "json"
[fields]
timestamp = "when"
event_type = "{kind}:{sub.status}"
principal = ["user.name", "user.id"]
[values.event_type]
"Logon:" = "login"
"*" = "access"
[[filter]]
field = "skip"
equals = ["yes"]
not = true
"#,
            Path::new("t"),
        )
        .expect("valid");
        let rec: Value = serde_json::json!({"when": "2025-01-01T00:00:00Z", "kind": "Logon", "user": {"id": "u1"}});
        let row = p.apply(&rec).expect("maps").expect("kept");
        assert_eq!(row.get(Field::EventType), Some("login"));
        assert_eq!(row.get(Field::Principal), Some("u1"));
        let dropped: Value = serde_json::json!({"when": "x", "kind": "Logon", "skip": "yes"});
        assert!(p.apply(&dropped).expect("maps").is_none());
    }

    /// Relative epoch times count from `[time] origin`; numbers too large to move are a reject,
    /// never an overflow; an origin needs an epoch format and an RFC 3339 instant.
    #[test]
    fn relative_epoch_times_count_from_the_origin() {
        let profile = |format: &str, origin: &str| {
            Profile::parse(
                &format!(
                    "name = \"t\"\nformat = \"json\"\n[fields]\ntimestamp = \"t\"\n\
                     [constants]\nevent_type = \"login\"\n[time]\nformat = \"{format}\"\n\
                     origin = \"{origin}\"\n"
                ),
                Path::new("t"),
            )
        };
        let at = |p: &Profile, t: serde_json::Value| {
            p.apply(&serde_json::json!({ "t": t }))
                .map(|row| row.and_then(|r| r.get(Field::Timestamp).map(str::to_string)))
        };
        let s = profile("epoch_s", "2025-03-01T00:00:00Z").expect("valid");
        // 2025-03-01T00:00:13Z
        assert_eq!(at(&s, "13".into()), Ok(Some("1740787213000".into())));
        let ms = profile("epoch_ms", "2025-03-01T00:00:00+01:00").expect("valid");
        assert_eq!(at(&ms, "1500".into()), Ok(Some("1740783601500".into())));
        assert!(at(&s, "9e300".into()).is_err());
        for (format, origin) in [
            ("%Y-%m-%d", "2025-03-01T00:00:00Z"),
            ("epoch_s", "2025-03-01"),
        ] {
            assert!(profile(format, origin).is_err(), "{format} {origin}");
        }
    }

    /// A logged bearer token's claims, an account id cut out of a path, an endpoint template
    /// made of it, and a list of templates that falls through to the one whose keys exist.
    #[test]
    fn jwt_claims_extracts_replacements_and_template_fallthrough() {
        let p = builtin("gateway").expect("built in");
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"kid":"k1"}"#),
            b64(r#"{"sub":"c7","jti":"t1"}"#)
        );
        let rec = serde_json::json!({"time_iso8601": "2025-03-01T10:00:00Z", "remote_addr": "192.0.2.1",
            "request": "GET /api/members/83422/addresses?x=1 HTTP/1.1", "status": "404",
            "http_authorization": format!("Bearer {token}")});
        let row = p.apply(&rec).expect("maps").expect("kept");
        assert_eq!(
            [
                Field::CredentialId,
                Field::TokenId,
                Field::Principal,
                Field::TargetAccount,
                Field::Action,
                Field::Outcome
            ]
            .map(|f| row.get(f)),
            [
                Some("k1"),
                Some("t1"),
                Some("c7"),
                Some("83422"),
                Some("GET /api/members/{id}/addresses"),
                Some("failure")
            ]
        );
        let apigw = serde_json::json!({"requestId": "r", "httpMethod": "GET", "resourcePath": "/members/{id}",
            "path": "/prod/members/abc", "status": "200", "requestTimeEpoch": "1740830400123"});
        let row = p.apply(&apigw).expect("maps").expect("kept");
        assert_eq!(
            (row.get(Field::Action), row.get(Field::TargetAccount)),
            (Some("GET /members/{id}"), None)
        );
    }
}
