//! Windows Security events: logons (4624), failed logons (4625), logoffs (4634 / 4647) and the
//! domain controller's Kerberos and NTLM checks (4768, 4769, 4771, 4776), read natively from
//! `.evtx` files with the `evtx` crate, or from their JSON export — `evtx_dump -o jsonl` (the
//! same `Event.System` / `Event.EventData` tree) or Winlogbeat's `winlog.*` documents.
//!
//! Mapping (`docs/profiles.md`): the target user is the principal, the computer that logged the
//! event is the target (the host logged into, for fan-out), `IpAddress` the source; the action
//! keeps the event id and its logon type or status, and a status that says the user name does
//! not exist (`0xC0000064`, Kerberos `0x6`) becomes `windows:<id>:invalid_user`. Logons of the
//! machine itself (SYSTEM, LOCAL / NETWORK SERVICE, window manager and font driver sessions,
//! logon types 0 and 5) and every other event id are counted as ignored: each host's SYSTEM
//! logs into each host, which would otherwise read as the widest fan-out of all.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

use evtx::EvtxParser;
use serde_json::Value;

use super::readers::{Sink, for_each_json_object};
use crate::normalize::{Field, RawRow};

/// The first bytes of every `.evtx` file.
pub const EVTX_MAGIC: &[u8] = b"ElfFile\0";

/// Largest compressed `.evtx` held in memory to parse (the parser needs to seek); a plain file
/// is read from disk chunk by chunk whatever its size.
const MAX_COMPRESSED_EVTX: u64 = 1 << 30;

/// Reads a binary `.evtx` file. Records are numbered by their place in the file; a record the
/// parser cannot decode is a reject, and a panic inside the parser (hostile input) ends the file
/// as unreadable instead of the run.
pub fn read_evtx(path: &Path, compressed: bool, reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let run = std::panic::AssertUnwindSafe(|| -> Result<(), String> {
        if compressed {
            let mut buf = Vec::new();
            reader
                .take(MAX_COMPRESSED_EVTX + 1)
                .read_to_end(&mut buf)
                .map_err(|e| format!("read failed (truncated or corrupt file?): {e}"))?;
            if buf.len() as u64 > MAX_COMPRESSED_EVTX {
                return Err(format!(
                    "compressed EVTX larger than {} MiB: decompress it first",
                    MAX_COMPRESSED_EVTX >> 20
                ));
            }
            let parser =
                EvtxParser::from_buffer(buf).map_err(|e| format!("not an EVTX file: {e}"))?;
            records(parser, sink);
        } else {
            drop(reader);
            let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
            let parser =
                EvtxParser::from_read_seek(file).map_err(|e| format!("not an EVTX file: {e}"))?;
            records(parser, sink);
        }
        Ok(())
    });
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => sink.read_failed(sink.stats.records + 1, reason),
        Err(_) => sink.read_failed(
            sink.stats.records + 1,
            "the EVTX parser failed on this file (corrupt?)".into(),
        ),
    }
}

fn records<T: std::io::Read + std::io::Seek>(mut parser: EvtxParser<T>, sink: &mut Sink) {
    for (i, record) in parser.records_json_value().enumerate() {
        let n = i as u64 + 1;
        match record {
            Ok(r) => sink.mapped(n, map(&r.data), || r.data.to_string().into_bytes()),
            Err(e) => sink.reject(n, format!("undecodable EVTX record: {e}"), b"", false),
        }
    }
}

/// JSON lines of exported events (`evtx_dump -o jsonl`, Winlogbeat).
pub fn read_json(reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    for_each_json_object(reader, sink, |sink, line, v, text| {
        sink.mapped(line, map(&v), || text.to_vec())
    });
}

/// True if `record` is a Windows event in one of the JSON shapes read here.
pub fn recognizes(record: &Value) -> bool {
    record
        .pointer("/Event/System")
        .is_some_and(Value::is_object)
        || record.pointer("/winlog/event_id").is_some()
}

/// One event as the fields the mapping reads, whichever shape it came in.
struct View<'a> {
    id: u64,
    time: &'a str,
    computer: Option<&'a str>,
    data: Option<&'a serde_json::Map<String, Value>>,
}

impl View<'_> {
    /// An `EventData` value as text; Windows writes `-` for "none".
    fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        let v = match self.data?.get(key)? {
            Value::String(s) => Cow::Borrowed(s.trim()),
            Value::Number(n) => Cow::Owned(n.to_string()),
            _ => return None,
        };
        (!v.is_empty() && v != "-").then_some(v)
    }

    fn status(&self, key: &str) -> String {
        self.get(key)
            .map_or_else(String::new, |s| s.to_ascii_lowercase())
    }
}

/// An event id as a number, string, or `<EventID Qualifiers="…">4625</EventID>`, which renders
/// as an object holding its text.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(m) => m.get("#text").and_then(number),
        _ => None,
    }
}

fn view(v: &Value) -> Result<View<'_>, String> {
    if let Some(system) = v.pointer("/Event/System") {
        let id = system
            .get("EventID")
            .and_then(number)
            .ok_or("Windows event without a numeric EventID")?;
        let time = system
            .pointer("/TimeCreated/#attributes/SystemTime")
            .or_else(|| system.pointer("/TimeCreated_attributes/SystemTime"))
            .and_then(Value::as_str)
            .ok_or("Windows event without TimeCreated SystemTime")?;
        return Ok(View {
            id,
            time,
            computer: system.get("Computer").and_then(Value::as_str),
            data: v.pointer("/Event/EventData").and_then(Value::as_object),
        });
    }
    let winlog = v.get("winlog").ok_or("not a Windows event")?;
    let id = winlog
        .get("event_id")
        .and_then(number)
        .ok_or("Winlogbeat event without a numeric winlog.event_id")?;
    let time = v
        .get("@timestamp")
        .and_then(Value::as_str)
        .ok_or("Winlogbeat event without @timestamp")?;
    Ok(View {
        id,
        time,
        computer: winlog.get("computer_name").and_then(Value::as_str),
        data: winlog.get("event_data").and_then(Value::as_object),
    })
}

/// Status codes that say the user name does not exist: NTSTATUS `STATUS_NO_SUCH_USER` and
/// Kerberos `KDC_ERR_C_PRINCIPAL_UNKNOWN`.
const NO_SUCH_USER: &str = "0xc0000064";
const KDC_UNKNOWN: &str = "0x6";

/// Well-known machine identities: LocalSystem, LocalService, NetworkService.
const MACHINE_SIDS: [&str; 3] = ["S-1-5-18", "S-1-5-19", "S-1-5-20"];

/// One event, in the JSON tree of any of the shapes read here (the XML reader builds the same
/// tree), as a canonical row; `None` for the events that carry no one's login.
pub(super) fn map(v: &Value) -> Result<Option<RawRow<'static>>, String> {
    let e = view(v)?;
    let mut row = RawRow::default();
    row.set(Field::Timestamp, e.time.to_string());
    if let Some(c) = e.computer {
        row.set(Field::TargetAccount, c.to_string());
    }
    if let Some(u) = e.get("TargetUserName") {
        row.set(Field::Principal, u.into_owned());
    }
    if let Some(ip) = e.get("IpAddress") {
        let ip = ip.trim_start_matches("::ffff:");
        row.set(Field::SourceIp, ip.to_string());
    }
    let logon_type = e.get("LogonType").map(Cow::into_owned).unwrap_or_default();
    let machine = e
        .get("TargetUserSid")
        .is_some_and(|s| MACHINE_SIDS.contains(&s.as_ref()))
        || e.get("TargetDomainName")
            .is_some_and(|d| d == "Window Manager" || d == "Font Driver Host")
        || matches!(logon_type.as_str(), "0" | "5");
    let (event, success, action) = match e.id {
        4624 | 4634 | 4647 if machine => return Ok(None),
        4624 => (
            "login",
            true,
            format!("windows:4624:logon_type_{logon_type}"),
        ),
        4634 | 4647 => ("logoff", true, format!("windows:{}", e.id)),
        4625 => {
            let (status, sub) = (e.status("Status"), e.status("SubStatus"));
            let why = if status == NO_SUCH_USER || sub == NO_SUCH_USER {
                "invalid_user".to_string()
            } else if sub.is_empty() || sub == "0x0" {
                status
            } else {
                sub
            };
            ("login", false, format!("windows:4625:{why}"))
        }
        4768 | 4771 | 4776 => {
            let status = e.status("Status");
            let ok = status == "0x0" || (e.id == 4776 && status == "0x00000000");
            let why = if status == NO_SUCH_USER || (e.id != 4776 && status == KDC_UNKNOWN) {
                "invalid_user"
            } else {
                status.as_str()
            };
            let ok = ok && e.id != 4771;
            ("login", ok, format!("windows:{}:{why}", e.id))
        }
        4769 => {
            if let Some(service) = e.get("ServiceName") {
                row.set(Field::TargetAccount, service.into_owned());
            }
            let ok = e.status("Status") == "0x0";
            ("service_ticket", ok, "windows:4769".to_string())
        }
        _ => return Ok(None),
    };
    row.set(Field::EventType, event);
    row.set(Field::Outcome, if success { "success" } else { "failure" });
    row.set(Field::Action, action);
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapped(v: Value) -> Option<RawRow<'static>> {
        map(&v).expect("maps")
    }

    fn evtx_json(id: Value, data: Value) -> Value {
        json!({"Event": {"System": {"EventID": id, "Computer": "FS01",
            "TimeCreated": {"#attributes": {"SystemTime": "2025-03-03T10:00:00.1234567Z"}}},
            "EventData": data}})
    }

    #[test]
    fn logons_failures_and_unknown_users() {
        let r = mapped(evtx_json(
            json!(4624),
            json!({"TargetUserName": "alice", "TargetUserSid": "S-1-5-21-1-2-3-1001", "LogonType": 10, "IpAddress": "::ffff:203.0.113.7"}),
        ))
        .expect("a logon");
        assert_eq!(
            (
                r.get(Field::EventType),
                r.get(Field::Principal),
                r.get(Field::SourceIp),
                r.get(Field::TargetAccount),
                r.get(Field::Action)
            ),
            (
                Some("login"),
                Some("alice"),
                Some("203.0.113.7"),
                Some("FS01"),
                Some("windows:4624:logon_type_10")
            )
        );
        let r = mapped(evtx_json(
            json!({"#attributes": {"Qualifiers": 0}, "#text": 4625}),
            json!({"TargetUserName": "oracle", "Status": "0xC000006D", "SubStatus": "0xC0000064", "IpAddress": "-"}),
        ))
        .expect("a failed logon");
        assert_eq!(
            (
                r.get(Field::Outcome),
                r.get(Field::Action),
                r.get(Field::SourceIp)
            ),
            (Some("failure"), Some("windows:4625:invalid_user"), None)
        );
        let r = mapped(evtx_json(
            json!(4776),
            json!({"TargetUserName": "bob", "Status": "0x0"}),
        ))
        .expect("an NTLM check");
        assert_eq!(r.get(Field::Outcome), Some("success"));
        let r = mapped(evtx_json(
            json!(4768),
            json!({"TargetUserName": "nobody", "Status": "0x6"}),
        ))
        .expect("a TGT request");
        assert_eq!(
            (r.get(Field::Outcome), r.get(Field::Action)),
            (Some("failure"), Some("windows:4768:invalid_user"))
        );
    }

    /// The machine's own sessions and events of other kinds carry no one's login.
    #[test]
    fn machine_sessions_and_other_events_are_ignored() {
        for (id, data) in [
            (
                4624,
                json!({"TargetUserName": "SYSTEM", "TargetUserSid": "S-1-5-18", "LogonType": 0}),
            ),
            (
                4624,
                json!({"TargetUserName": "DWM-1", "TargetDomainName": "Window Manager", "LogonType": 2}),
            ),
            (4624, json!({"TargetUserName": "svc", "LogonType": 5})),
            (4672, json!({"SubjectUserName": "alice"})),
        ] {
            assert!(
                mapped(evtx_json(json!(id), data.clone())).is_none(),
                "{id} {data}"
            );
        }
    }

    #[test]
    fn winlogbeat_documents() {
        let v = json!({"@timestamp": "2025-03-03T10:00:00.000Z", "event": {"code": "4625"},
            "winlog": {"event_id": "4625", "computer_name": "dc1.corp.example", "channel": "Security",
                "event_data": {"TargetUserName": "admin", "Status": "0xc000006d", "SubStatus": "0xc000006a", "IpAddress": "198.51.100.66", "LogonType": "3"}}});
        assert!(recognizes(&v));
        let r = mapped(v).expect("a failed logon");
        assert_eq!(
            (
                r.get(Field::Action),
                r.get(Field::TargetAccount),
                r.get(Field::SourceIp)
            ),
            (
                Some("windows:4625:0xc000006a"),
                Some("dc1.corp.example"),
                Some("198.51.100.66")
            )
        );
        assert!(map(&json!({"winlog": {"event_id": 4624}})).is_err());
    }
}
