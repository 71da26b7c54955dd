//! Ranking: merge every finding about one entity into one row, score it, then group rows into
//! incidents and order the table by incident.
//!
//! Reasons from one detector are views of one behaviour (a one-night lookup spree is a burst, a
//! reach above peers and a sequential walk at once): only the strongest counts. Detectors look at
//! different facts (offboarding, issuance, enumeration, key inventory), so their strongest
//! reasons combine as independent evidence (a "noisy-OR"): `score = 100 × (1 − Π(1 − sᵢ/100))`.
//! Each counted reason's share of the score is its share of `Σ −ln(1 − sᵢ/100)`, the additive
//! form of the same formula; corroborating reasons are listed with share 0 (`docs/scoring.md`).

mod incidents;
mod suppress;

pub use incidents::{Incident, group};
pub use suppress::{Suppressed, suppress};

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::detect::{Entity, Finding};

/// Severity levels as security tools name them, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Score bands: critical ≥ 80, high ≥ 60, medium ≥ 40, low ≥ 15, else informational.
    pub fn from_score(score: f64) -> Severity {
        match score {
            s if s >= 80.0 => Severity::Critical,
            s if s >= 60.0 => Severity::High,
            s if s >= 40.0 => Severity::Medium,
            s if s >= 15.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        let s = s.trim().to_ascii_lowercase();
        Severity::ALL
            .into_iter()
            .find(|l| l.name() == s || (s == "info" && *l == Severity::Informational))
    }
}

/// One ranked row: an entity with all its reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    /// Position in the table, which lists incidents in order and each incident's rows together.
    pub rank: usize,
    /// The incident's number: its place among incidents (see [`group`]).
    pub incident: usize,
    pub entity: Entity,
    pub score: f64,
    pub severity: Severity,
    pub detectors: Vec<&'static str>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub events: u64,
    pub distinct_accounts: u64,
    /// What `distinct_accounts` counts (that of the finding it comes from).
    pub counts: crate::detect::Counted,
    /// Reasons in descending strength, each with its share of the score (0–1).
    pub reasons: Vec<(Finding, f64)>,
    pub related: Vec<Entity>,
    pub techniques: Vec<&'static str>,
    /// Top endpoints and clients over the entity's events, with counts (filled after ranking,
    /// see [`crate::detect::usage`]).
    pub usage: crate::detect::usage::Usage,
}

const MAX_SIGNAL: f64 = 99.0;

/// Merges findings per entity and sorts: score desc, then entity kind and id (total order, so the
/// output never depends on detector or thread order). [`group`] then orders by incident.
pub fn rank(findings: Vec<Finding>) -> Vec<Ranked> {
    let mut by_entity: BTreeMap<Entity, Vec<Finding>> = BTreeMap::new();
    for f in findings {
        by_entity.entry(f.entity.clone()).or_default().push(f);
    }
    let mut rows: Vec<Ranked> = by_entity.into_iter().map(|(e, fs)| merge(e, fs)).collect();
    rows.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.entity.cmp(&b.entity))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    rows
}

fn merge(entity: Entity, mut findings: Vec<Finding>) -> Ranked {
    for f in &mut findings {
        f.score = round2(f.score);
    }
    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.code.cmp(b.code))
            .then_with(|| a.reason.cmp(&b.reason))
    });
    // Sorted strongest first, so the first reason of each detector is the one that counts.
    let mut counted = BTreeSet::new();
    let weights: Vec<f64> = findings
        .iter()
        .map(|f| {
            if counted.insert(f.detector) {
                -(1.0 - f.score.clamp(0.0, MAX_SIGNAL) / 100.0).ln()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let score = round2(100.0 * (1.0 - (-total).exp()));
    let detectors: BTreeSet<&'static str> = findings.iter().map(|f| f.detector).collect();
    let techniques: BTreeSet<&'static str> = findings
        .iter()
        .flat_map(|f| f.techniques.iter().copied())
        .collect();
    let related: BTreeSet<Entity> = findings
        .iter()
        .flat_map(|f| f.related.iter().cloned())
        .filter(|r| *r != entity)
        .collect();
    // Exposure is what the abuse reached: advice (a departed custodian's key the issuer still
    // signs with) counts only when nothing else was found. A forged-token key's row said
    // "7989 accounts (99.9 %)" — every customer the issuer served — where the never-issued
    // tokens reached 3,292.
    let abuse = findings.iter().any(|f| !f.hygiene);
    let exposing = || findings.iter().filter(move |f| !abuse || !f.hygiene);
    let first_seen = exposing().filter_map(|f| f.first_seen).min();
    let last_seen = exposing().filter_map(|f| f.last_seen).max();
    let events = exposing().map(|f| f.events).max().unwrap_or(0);
    // The widest count, and what it counts; accounts win a tie (they have a population).
    let (distinct_accounts, std::cmp::Reverse(counts)) = exposing()
        .map(|f| (f.distinct_accounts, std::cmp::Reverse(f.counts)))
        .max()
        .unwrap_or_default();
    let reasons = findings
        .into_iter()
        .zip(weights)
        .map(|(f, w)| (f, if total > 0.0 { round2(w / total) } else { 0.0 }))
        .collect();
    Ranked {
        rank: 0,
        incident: 0,
        entity,
        score,
        severity: Severity::from_score(score),
        detectors: detectors.into_iter().collect(),
        first_seen,
        last_seen,
        events,
        distinct_accounts,
        counts,
        reasons,
        related: related.into_iter().collect(),
        techniques: techniques.into_iter().collect(),
        usage: Default::default(),
    }
}

/// Scores are printed with two decimals; rounding here keeps CSV and JSON identical run to run.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::EntityKind;

    /// A finding about credential `id` with no instants and one event; tests change what they need.
    pub(crate) fn f(id: &str, code: &'static str, score: f64) -> Finding {
        Finding {
            detector: "t",
            entity: Entity::new(EntityKind::Credential, id),
            code,
            reason: code.into(),
            score,
            first_seen: None,
            last_seen: None,
            events: 1,
            distinct_accounts: 1,
            counts: crate::detect::Counted::Accounts,
            marks: vec![],
            related: vec![],
            techniques: vec![],
            evidence: Default::default(),
            hygiene: false,
        }
    }

    /// A signing key whose custodian left: the issuer's own signing (advice, every customer)
    /// and the never-issued tokens (abuse, a few hundred). The row's exposure is the abuse's;
    /// the advice alone gives its own.
    #[test]
    fn advice_sets_the_exposure_only_when_nothing_else_was_found() {
        let advice = Finding {
            distinct_accounts: 7989,
            events: 291_434,
            first_seen: Some(0),
            last_seen: Some(100),
            hygiene: true,
            ..from("offboarding", "kid", "used_after_owner_left", 30.0)
        };
        let abuse = Finding {
            distinct_accounts: 3292,
            events: 8406,
            first_seen: Some(10),
            last_seen: Some(90),
            ..from("forged_tokens", "kid", "never_issued_tokens", 97.0)
        };
        let row = rank(vec![advice.clone(), abuse]).remove(0);
        assert_eq!(
            (
                row.distinct_accounts,
                row.events,
                row.first_seen,
                row.last_seen
            ),
            (3292, 8406, Some(10), Some(90))
        );
        assert_eq!(row.reasons.len(), 2);
        let row = rank(vec![advice]).remove(0);
        assert_eq!((row.distinct_accounts, row.events), (7989, 291_434));
    }

    #[test]
    fn two_independent_signals_outrank_a_stronger_single_one() {
        let rows = rank(vec![
            f("a", "x", 70.0),
            from("offboarding", "b", "y", 60.0),
            from("forged_tokens", "b", "z", 50.0),
        ]);
        assert_eq!(rows[0].entity.id, "b");
        assert_eq!(rows[0].score, 80.0);
        assert_eq!(rows[0].severity, Severity::Critical);
        let shares: f64 = rows[0].reasons.iter().map(|r| r.1).sum();
        assert!((shares - 1.0).abs() < 0.02, "{shares}");
    }

    fn from(detector: &'static str, id: &str, code: &'static str, score: f64) -> Finding {
        Finding {
            detector,
            ..f(id, code, score)
        }
    }

    #[test]
    fn one_detectors_views_of_one_behaviour_do_not_compound() {
        let rows = rank(vec![
            from("enumeration", "agent", "burst_over_own_baseline", 78.0),
            from("enumeration", "agent", "reach_above_peers", 70.0),
            from("enumeration", "agent", "sequential_walk", 70.0),
            from("enumeration", "scraper", "low_and_slow_reach", 85.0),
        ]);
        assert_eq!(rows[0].entity.id, "scraper");
        let agent = &rows[1];
        assert_eq!(agent.score, 78.0);
        let shares: Vec<f64> = agent.reasons.iter().map(|r| r.1).collect();
        assert_eq!(shares, vec![1.0, 0.0, 0.0]);
        // Different detectors are different facts: they still combine.
        let rows = rank(vec![
            from("offboarding", "k", "used_after_owner_left", 60.0),
            from("enumeration", "k", "reach_above_peers", 50.0),
        ]);
        assert_eq!(rows[0].score, 80.0);
    }

    #[test]
    fn ties_break_on_entity_not_input_order() {
        let a = rank(vec![f("b", "x", 50.0), f("a", "x", 50.0)]);
        let b = rank(vec![f("a", "x", 50.0), f("b", "x", 50.0)]);
        assert_eq!(a[0].entity.id, "a");
        assert_eq!(b[0].entity.id, "a");
    }
}
