//! One JSON-lines record → [`RawRow`], borrowing from the line wherever the JSON allows it.
//! A streaming visitor instead of a `serde_json::Value` map: unknown keys are skipped without
//! being built, and plain strings are not copied (the previous map-based reader spent most of its
//! time allocating).

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::normalize::{Field, RawRow};

/// Parses one non-empty line; the error is the reason quarantined in `rejects.csv`. `shape` is
/// the previous line's keys (see [`super::json_flat::Shape`]).
pub fn parse<'a>(
    text: &'a [u8],
    shape: &mut super::json_flat::Shape,
) -> Result<RawRow<'a>, String> {
    match super::json_flat::parse(text, shape) {
        Some(row) => Ok(row),
        None => parse_slow(text),
    }
}

/// Any JSON, through serde_json: the judge of lines the flat scanner declines.
pub(super) fn parse_slow(text: &[u8]) -> Result<RawRow<'_>, String> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let row = de
        .deserialize_any(RowVisitor)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data
                if e.to_string().contains("expected a JSON object") =>
            {
                "expected a JSON object".to_string()
            }
            _ => format!("invalid JSON: {e}"),
        })?;
    de.end().map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(row)
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = RawRow<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRow<'de>, A::Error> {
        let mut row = RawRow::default();
        while let Some(Key(key)) = map.next_key()? {
            match Field::from_name(&key) {
                Some(field) => {
                    let raw: &'de RawValue = map.next_value()?;
                    // A string serde cannot decode (a lone surrogate `\ud800`) is a broken
                    // record, not an absent field: dropping it silently hid the value.
                    if let Some(v) = scalar(raw)
                        .map_err(|e| de::Error::custom(format!("field {:?}: {e}", key.as_ref())))?
                    {
                        row.set(field, v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(row)
    }
}

/// A JSON value as the text a CSV cell would hold: strings unquoted (borrowed unless escaped),
/// `null` absent, numbers, booleans, objects and arrays as written.
fn scalar(raw: &RawValue) -> Result<Option<Cow<'_, str>>, serde_json::Error> {
    let t = raw.get();
    Ok(match t.as_bytes().first() {
        Some(b'"') => {
            let inner = &t[1..t.len() - 1];
            if inner.contains('\\') {
                Some(Cow::Owned(serde_json::from_str::<String>(t)?))
            } else {
                Some(Cow::Borrowed(inner))
            }
        }
        Some(b'n') => None,
        _ => Some(Cow::Borrowed(t)),
    })
}

/// A map key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<RawRow<'_>, String> {
        super::parse(text, &mut super::super::json_flat::Shape::default())
    }

    #[test]
    fn values_become_cells() {
        let row = parse(br#"{"timestamp":1700000000,"event_type":"lo\"gin","principal":null,"x":{"a":[1]},"outcome":true}"#)
            .expect("parses");
        assert_eq!(row.get(Field::Timestamp), Some("1700000000"));
        assert_eq!(row.get(Field::EventType), Some("lo\"gin"));
        assert_eq!(row.get(Field::Principal), None);
        assert_eq!(row.get(Field::Outcome), Some("true"));
    }

    #[test]
    fn an_undecodable_string_rejects_the_line_instead_of_dropping_the_field() {
        let err = parse(br#"{"event_type":"login","principal":"\ud800"}"#).unwrap_err();
        assert!(err.contains("principal") && err.contains("escape"), "{err}");
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        assert_eq!(
            parse(b"[1,2]").err().as_deref(),
            Some("expected a JSON object")
        );
        assert!(parse(b"{not json").unwrap_err().starts_with("invalid JSON"));
        assert!(
            parse(br#"{"a":1} trailing"#)
                .unwrap_err()
                .starts_with("invalid JSON")
        );
    }
}
