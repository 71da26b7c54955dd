//! Windows events exported as XML — `wevtutil qe Security /f:xml` (events back to back on one
//! line), `Get-WinEvent | % ToXml()`, `evtx_dump -o xml` (pretty-printed, a `Record N` line and an
//! XML declaration before each) — with or without an `<Events>` wrapper. Each `<Event>` element is
//! cut out of the stream with the record bound (`--max-record-bytes`), parsed on its own with
//! `roxmltree` (DTDs refused, so no entity expansion), and mapped like the JSON export
//! ([`super::windows`]). "Line" is the line where the event starts.

use std::io::{BufRead, Read};

use serde_json::{Map, Value, json};

use super::lines;
use super::readers::Sink;
use super::windows;

/// The namespace every Windows event element declares: what recognises the format.
pub const EVENT_NAMESPACE: &str = "schemas.microsoft.com/win/2004/08/events/event";

/// True if the head of a file is Windows event XML.
pub fn looks_like(body: &str) -> bool {
    (body.starts_with('<') || body.starts_with("Record "))
        && body.contains("<Event")
        && body.contains(EVENT_NAMESPACE)
}

pub fn read_xml(mut reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let max = sink.max_record;
    let (mut piece, mut record) = (Vec::new(), Vec::new());
    // The current line, and the line where the open event started (0: none open).
    let (mut line, mut start) = (1u64, 0u64);
    let mut too_long = false;
    loop {
        piece.clear();
        // Up to and including the next `>`: some text and one tag, never more than the bound.
        match (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'>', &mut piece)
        {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return sink.read_failed(
                    line,
                    format!("read failed (truncated or corrupt file?): {e}"),
                );
            }
        }
        let newlines = |bytes: &[u8]| memchr::memchr_iter(b'\n', bytes).count() as u64;
        if start == 0 {
            if let Some(at) = event_open(&piece) {
                start = line + newlines(&piece[..at]);
                record.clear();
                record.extend_from_slice(&piece[at..]);
                too_long = false;
            }
        } else if !too_long {
            record.extend_from_slice(&piece);
            if record.len() > max {
                too_long = true;
                record = Vec::new();
            }
        }
        if start != 0 && piece.ends_with(b"</Event>") {
            if too_long {
                sink.reject(start, lines::too_long(max), b"", false);
            } else {
                event(sink, start, &record);
            }
            start = 0;
        }
        line += newlines(&piece);
    }
    if start != 0 {
        let reason = "XML event not closed before the end of the file".to_string();
        sink.reject(start, reason, &record, false);
    }
}

/// Where `<Event` opens an event element in `piece` (not `<Events`, not `<EventData`).
fn event_open(piece: &[u8]) -> Option<usize> {
    let at = memchr::memrchr(b'<', piece)?;
    let tag = &piece[at..];
    let after = tag.get(b"<Event".len())?;
    (tag.starts_with(b"<Event") && matches!(after, b' ' | b'>' | b'\t' | b'\r' | b'\n'))
        .then_some(at)
}

/// One `<Event>` element through the shared mapping.
fn event(sink: &mut Sink, line: u64, record: &[u8]) {
    match tree(record) {
        Ok(tree) => sink.mapped(line, windows::map(&tree), || record.to_vec()),
        Err(reason) => sink.reject(line, reason, record, false),
    }
}

/// One `<Event>` element as the tree the JSON export has.
fn tree(record: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(record).map_err(|_| "invalid UTF-8".to_string())?;
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("invalid XML event: {e}"))?;
    let (mut system, mut data) = (Map::new(), Map::new());
    for node in doc.root_element().descendants().filter(|n| n.is_element()) {
        let text = || Value::String(node.text().unwrap_or_default().trim().to_string());
        match node.tag_name().name() {
            "EventID" => {
                system.insert("EventID".into(), text());
            }
            "Computer" => {
                system.insert("Computer".into(), text());
            }
            "TimeCreated" => {
                if let Some(t) = node.attribute("SystemTime") {
                    let stamp = json!({"#attributes": {"SystemTime": t}});
                    system.insert("TimeCreated".into(), stamp);
                }
            }
            "Data" => {
                if let Some(name) = node.attribute("Name") {
                    data.insert(name.to_string(), text());
                }
            }
            _ => {}
        }
    }
    Ok(json!({"Event": {"System": system, "EventData": data}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Namespaced elements, escaped text, and no DTD (so no entity expansion bombs).
    #[test]
    fn an_event_element_becomes_the_json_tree() {
        let xml = b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID Qualifiers='0'>4625</EventID><TimeCreated SystemTime='2025-03-03T10:00:00Z'/><Computer>FS01</Computer></System><EventData><Data Name='TargetUserName'>r&amp;d</Data><Data>positional</Data></EventData></Event>";
        let t = tree(xml).expect("parses");
        assert_eq!(t.pointer("/Event/System/EventID"), Some(&json!("4625")));
        assert_eq!(
            t.pointer("/Event/EventData/TargetUserName"),
            Some(&json!("r&d"))
        );
        assert_eq!(
            t.pointer("/Event/EventData")
                .and_then(Value::as_object)
                .map(Map::len),
            Some(1)
        );
        let bomb = b"<!DOCTYPE e [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;&a;'>]><Event>&b;</Event>";
        assert!(tree(bomb).is_err());
    }

    #[test]
    fn event_tags_are_told_from_their_look_alikes() {
        assert_eq!(event_open(b"Record 1\n<Event xmlns='x'>"), Some(9));
        assert_eq!(event_open(b"<Event>"), Some(0));
        assert_eq!(event_open(b"<Events>"), None);
        assert_eq!(event_open(b"<EventData>"), None);
        assert_eq!(event_open(b"<EventID>"), None);
    }
}
