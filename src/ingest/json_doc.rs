//! One JSON document holding many records — a CloudTrail file's `{"Records": [...]}` or an export's
//! top-level array — read record by record as the parser reaches them, never whole.
//!
//! Loading the document first let a compressed file with a valid prefix and nothing else
//! (`{"Records":[` then gigabytes of spaces) take 4 GB in seconds. Here serde's visitors hand
//! over each element as soon as it is parsed, and a byte count since the last element stops the
//! stream once one element runs past the record bound.

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Calls `each(index, element)` for every element of the document's record array, in order.
/// Returns how many elements were handed over and, if the walk stopped early, why.
pub(super) fn for_each_record(
    reader: impl Read,
    max_record: usize,
    each: &mut dyn FnMut(u64, Value),
) -> (u64, Option<String>) {
    let since = Rc::new(Cell::new(0usize));
    let counted = Counted {
        inner: reader,
        since: since.clone(),
        max: max_record,
    };
    let mut de = serde_json::Deserializer::from_reader(counted);
    let mut walk = Walk {
        each,
        since,
        seen: 0,
    };
    let result = (&mut de).deserialize_any(Top(&mut walk));
    let result = result.and_then(|found| match found {
        true => de.end(),
        false => Err(serde::de::Error::custom(
            "expected a JSON array of records or an object with a \"Records\" array",
        )),
    });
    (walk.seen, result.err().map(|e| e.to_string()))
}

/// Counts the bytes read since the last element; past the bound the read fails, which ends the
/// parse with that message.
struct Counted<R> {
    inner: R,
    since: Rc<Cell<usize>>,
    max: usize,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.since.get().saturating_add(n);
        self.since.set(total);
        if total > self.max {
            return Err(std::io::Error::other(format!(
                "a record runs past {} bytes (--max-record-bytes)",
                self.max
            )));
        }
        Ok(n)
    }
}

struct Walk<'a> {
    each: &'a mut dyn FnMut(u64, Value),
    since: Rc<Cell<usize>>,
    seen: u64,
}

/// The members that hold a document's records: CloudTrail's, Azure Monitor's, Microsoft Graph's
/// (see [`super::sources::is_container`]).
const RECORD_MEMBERS: [&str; 3] = ["Records", "records", "value"];

/// The top level: an array of records, or an object whose record member is one. Answers
/// whether a record array was found.
struct Top<'w, 'a>(&'w mut Walk<'a>);

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of records or an object with a \"Records\" array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Elements(self.0).visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if RECORD_MEMBERS.contains(&key.as_str()) && !found {
                found = map.next_value_seed(Elements(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The record array itself.
struct Elements<'w, 'a>(&'w mut Walk<'a>);

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let walk = self.0;
        walk.since.set(0);
        while let Some(v) = seq.next_element::<Value>()? {
            walk.seen += 1;
            (walk.each)(walk.seen, v);
            walk.since.set(0);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(text: &[u8], max: usize) -> (Vec<String>, Option<String>) {
        let mut seen = Vec::new();
        let (_, err) = for_each_record(text, max, &mut |i, v| seen.push(format!("{i}:{v}")));
        (seen, err)
    }

    #[test]
    fn records_and_arrays_stream_in_order() {
        let (seen, err) = walk(br#"{"x":[1],"Records":[{"a":1},{"a":2}],"y":2}"#, 1024);
        assert_eq!(seen, ["1:{\"a\":1}", "2:{\"a\":2}"]);
        assert!(err.is_none(), "{err:?}");
        let (seen, err) = walk(br#" [{"a":1}, 3] "#, 1024);
        assert_eq!(seen, ["1:{\"a\":1}", "2:3"]);
        assert!(err.is_none());
    }

    #[test]
    fn a_record_past_the_bound_stops_the_walk_after_the_good_ones() {
        let mut text = br#"{"Records":[{"a":1},"#.to_vec();
        text.extend(std::iter::repeat_n(b' ', 100_000));
        let (seen, err) = walk(&text, 4096);
        assert_eq!(seen, ["1:{\"a\":1}"]);
        assert!(err.is_some_and(|e| e.contains("--max-record-bytes")));
    }

    #[test]
    fn other_documents_are_refused_with_a_reason() {
        let (seen, err) = walk(br#"{"Events":[]}"#, 1024);
        assert!(seen.is_empty());
        assert!(err.is_some_and(|e| e.contains("Records")));
    }
}
