//! Applying the allowlist after ranking: a suppressed row leaves the ranking but not the report —
//! the summary counts and lists it with who allowed it, why, and until when.

use super::Ranked;
use crate::context::Allow;

/// A ranked row the allowlist removed, with the entry that removed it.
#[derive(Debug, Clone)]
pub struct Suppressed {
    pub row: Ranked,
    pub allow: Allow,
}

/// Splits `rows` into kept and suppressed. An entry only covers activity up to its expiry: an
/// expired entry suppresses nothing and is reported in `notes`. A row without a last instant of
/// its own (a reason that counts accounts, not events) is judged at `data_end`, the last event
/// of the run: an entry that expired before the data ends covers none of it.
pub fn suppress(
    rows: Vec<Ranked>,
    allowlist: &[Allow],
    data_end: Option<i64>,
) -> (Vec<Ranked>, Vec<Suppressed>, Vec<String>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    let mut notes = Vec::new();
    for row in rows {
        let matching = allowlist.iter().find(|a| {
            a.entity == row.entity.id
                && a.kind
                    .as_deref()
                    .is_none_or(|k| k == row.entity.kind.name())
        });
        match matching {
            Some(a) if row.last_seen.or(data_end).is_none_or(|t| t < a.expires_at) => {
                suppressed.push(Suppressed {
                    row,
                    allow: a.clone(),
                });
            }
            Some(a) => {
                notes.push(format!(
                    "allowlist entry for {} (owner {}) expired on {}: activity continues after it, so it was not applied",
                    a.entity, a.owner, a.expires
                ));
                kept.push(row);
            }
            None => kept.push(row),
        }
    }
    (kept, suppressed, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, last_seen: Option<i64>) -> Ranked {
        let finding = crate::detect::Finding {
            last_seen,
            ..crate::rank::tests::f(id, "reach_above_peers", 50.0)
        };
        crate::rank::rank(vec![finding]).remove(0)
    }

    fn allow(id: &str, expires_at: i64) -> Allow {
        Allow {
            entity: id.into(),
            kind: None,
            reason: "nightly job".into(),
            expires: "2025-01-31".into(),
            expires_at,
            owner: "ops".into(),
        }
    }

    /// An entry covers activity before its expiry; a row with no instant of its own is judged at
    /// the end of the data, so an entry that expired before the data ends suppresses nothing.
    #[test]
    fn expiry_applies_to_every_row() {
        let rows = vec![row("a", Some(5)), row("b", Some(50)), row("c", None)];
        let list = [allow("a", 10), allow("b", 10), allow("c", 10)];
        let (kept, suppressed, notes) = suppress(rows.clone(), &list, Some(100));
        let kept: Vec<&str> = kept.iter().map(|r| r.entity.id.as_str()).collect();
        assert_eq!(kept, ["b", "c"]);
        assert_eq!(suppressed.len(), 1);
        assert_eq!(notes.len(), 2);
        // The same entry, not yet expired when the data ends, suppresses the row without instants.
        let (kept, _, _) = suppress(rows, &[allow("c", 1000)], Some(100));
        assert!(kept.iter().all(|r| r.entity.id != "c"));
    }
}
