//! The fast path for the JSON lines nearly every export is made of: one flat object whose values
//! are strings without escapes, numbers, booleans or null. Such a line is read by scanning for
//! quotes, with no deserializer state; anything else (nesting, escapes, odd whitespace, invalid
//! JSON) returns `None` and goes through serde_json, which is then the one that accepts or
//! rejects it. serde_json was a third of ingest on the 10M-event export; this path took `inspect`
//! of that export from 14.5 to 11.6 s of CPU (`docs/performance.md`, third session). The
//! `json_line` fuzz target holds it to serde_json's answer (17.6M executions, no difference).
//!
//! The contract: on every line this accepts, it yields exactly what the serde path would.

use std::borrow::Cow;

use crate::normalize::{Field, RawRow};

/// The keys of the last line read, in order, quoted, with the field each names. Exporters write
/// every line with the same keys in the same order, so a key is recognised by one comparison
/// instead of a scan for its closing quote and a lookup of its name.
#[derive(Default)]
pub struct Shape {
    keys: Vec<(Box<str>, Option<Field>)>,
}

/// Parses `text` (trimmed, non-empty) if it is a flat object this scanner handles; `shape` is
/// the previous line's and becomes this one's.
pub fn parse<'a>(text: &'a [u8], shape: &mut Shape) -> Option<RawRow<'a>> {
    // Nearly every line is printable ASCII: one vectorised pass proves it, and then neither UTF-8
    // nor control characters need checking again (from_utf8 and the per-string checks were 3 % of
    // JSON-lines ingest).
    let printable = printable(text);
    let text = if printable {
        // SAFETY: printable ASCII is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(text) }
    } else {
        std::str::from_utf8(text).ok()?
    };
    let b = text.as_bytes();
    let mut row = RawRow::default();
    let mut i = skip_ws(b, expect(b, 0, b'{')?);
    if b.get(i) == Some(&b'}') {
        return (i + 1 == b.len()).then_some(row);
    }
    let string = |i| string(text, i, printable);
    let mut k = 0;
    loop {
        let (field, after) = match shape.keys.get(k) {
            // A quoted key from the fast path holds no quote or backslash, so a line that starts
            // with it here has exactly that key.
            Some((quoted, field)) if b[i..].starts_with(quoted.as_bytes()) => {
                (*field, i + quoted.len())
            }
            _ => {
                let (key, after) = string(i)?;
                let field = Field::from_name(key);
                shape.keys.truncate(k);
                shape.keys.push((format!("\"{key}\"").into(), field));
                (field, after)
            }
        };
        i = skip_ws(b, expect(b, skip_ws(b, after), b':')?);
        let (value, after) = match b.get(i)? {
            b'"' => string(i).map(|(s, end)| (Some(s), end))?,
            _ => value(text, i)?,
        };
        if let (Some(field), Some(v)) = (field, value) {
            row.set(field, Cow::Borrowed(v));
        }
        i = skip_ws(b, after);
        k += 1;
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return (i + 1 == b.len()).then_some(row),
            _ => return None,
        }
    }
}

/// Whether every byte is printable ASCII (a space to a tilde), a block of 32 at a time, each
/// block folded without a branch so that it compiles to vector compares. `Iterator::all` stops at
/// the first miss, so it stayed a loop of one byte at a time: 60–70 % of this scanner's time in
/// `perf annotate`, and what one build or another laid out better or worse (the 10M-event
/// JSON-lines export's ingest 4.0–4.1 s against 4.5–4.7 s for two builds of the same scanner;
/// `docs/performance.md`, fiftieth session, has the figure with this).
fn printable(text: &[u8]) -> bool {
    let ok = |c: u8| c.wrapping_sub(b' ') <= b'~' - b' ';
    let mut blocks = text.chunks_exact(32);
    for block in &mut blocks {
        if !block.iter().fold(true, |all, &c| all & ok(c)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&c| ok(c))
}

fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    (b.get(i) == Some(&c)).then_some(i + 1)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// A string starting at `i` with no escapes or control characters (known absent from a
/// `printable` line): its contents and the index after the closing quote.
fn string(text: &str, i: usize, printable: bool) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    let start = expect(b, i, b'"')?;
    let len = memchr::memchr2(b'"', b'\\', &b[start..])?;
    let end = start + len;
    if b[end] != b'"' || (!printable && b[start..end].iter().any(|&c| c < 0x20)) {
        return None;
    }
    Some((text.get(start..end)?, end + 1))
}

/// A scalar value at `i` other than a string: `None` inside for `null` (absent, as in the serde
/// path), the text as written for numbers and booleans. Objects and arrays are left to serde.
fn value(text: &str, i: usize) -> Option<(Option<&str>, usize)> {
    let b = text.as_bytes();
    match b.get(i)? {
        b'n' => literal(b, i, "null").map(|end| (None, end)),
        b't' => literal(b, i, "true").map(|end| (text.get(i..end), end)),
        b'f' => literal(b, i, "false").map(|end| (text.get(i..end), end)),
        b'-' | b'0'..=b'9' => {
            let end = number(b, i)?;
            Some((text.get(i..end), end))
        }
        _ => None,
    }
}

fn literal(b: &[u8], i: usize, word: &str) -> Option<usize> {
    b.get(i..)?
        .starts_with(word.as_bytes())
        .then_some(i + word.len())
}

/// The end of a number in exactly JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: usize| i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printable in blocks is printable byte by byte, at every length and wherever the one
    /// byte outside the range falls (below the space, the delete past the tilde, UTF-8).
    #[test]
    fn printable_in_blocks_is_printable_byte_by_byte() {
        let line: Vec<u8> = (0..100u8).map(|i| b' ' + i % 95).collect();
        for len in 0..line.len() {
            let text = &line[..len];
            assert!(printable(text), "{len}");
            for at in 0..len {
                for bad in [0u8, b'\t', b' ' - 1, 0x7f, 0xc3, 0xff] {
                    let mut text = text.to_vec();
                    text[at] = bad;
                    let want = text.iter().all(|&c| (b' '..=b'~').contains(&c));
                    assert_eq!(printable(&text), want, "{len} bytes, {bad} at {at}");
                }
            }
        }
    }

    /// Every line the fast path accepts must read exactly as through serde; the rest it declines.
    #[test]
    fn agrees_with_serde_or_declines() {
        let lines: &[&[u8]] = &[
            br#"{"timestamp":"1740811783081","event_type":"access","principal":"C1","token_id":null}"#,
            br#"{"timestamp":"1740811783082","event_type":"access","principal":"C2","token_id":"t"}"#,
            br#"{"timestamp":"1","event_type":"x","principal_x":"b","token_id":"t"}"#,
            br#"{"event_type":"y","timestamp":"2","principal":"c"}"#,
            br#"{"event_type":"y","timestamp":"2","principal":"c","Principal":"d"}"#,
            br#"{ "timestamp" : 1700000000 , "outcome" : true, "records": -1.5e+3, "x": false }"#,
            br#"{"event_type":"login","principal":"caf\u00e9"}"#,
            br#"{"event_type":"login","nested":{"a":1}}"#,
            br#"{"event_type":"login","list":[1,2]}"#,
            br#"{"event_type":"login","principal":"dup","principal":"second"}"#,
            br#"{}"#,
            br#"{"timestamp":01}"#,
            br#"{"timestamp":1.}"#,
            br#"{"timestamp":-}"#,
            br#"{"a":1,}"#,
            br#"{"a":1} x"#,
            br#"{"a":nul}"#,
            b"{\"a\":\"tab\there\"}",
            "{\"principal\":\"ünï\"}".as_bytes(),
            br#"[1]"#,
        ];
        // Each line read with a fresh shape and with the previous line's, as in a file.
        let mut shape = Shape::default();
        for line in lines {
            let serde = super::super::json_row::parse_slow(line);
            let fresh = parse(line, &mut Shape::default());
            let carried = parse(line, &mut shape);
            assert_eq!(fresh.is_some(), carried.is_some());
            if let Some(fast) = carried {
                let slow = serde.expect("fast path accepted a line serde refuses");
                for f in Field::ALL {
                    assert_eq!(
                        fast.get(f),
                        slow.get(f),
                        "{}",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
        let parse = |line| parse(line, &mut Shape::default());
        assert!(parse(lines[0]).is_some() && parse(lines[1]).is_some());
        assert!(parse(lines[7]).is_none() && parse(lines[11]).is_none());
    }
}
