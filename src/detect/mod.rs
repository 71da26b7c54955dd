//! Detection: each detector reads the one event frame plus context and returns findings.
//!
//! A finding is one reason about one entity (a credential, a principal, a source address). The
//! same entity may collect reasons from several detectors; [`crate::rank`] merges them, so a
//! detector never needs to know about the others.

pub mod activity;
pub mod auth_attacks;
pub mod enumeration;
pub mod forged_tokens;
mod issuance;
pub mod key_lifecycle;
pub mod offboarding;
pub mod population;
pub mod reach;
mod tally;
pub mod usage;

use rayon::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use polars::prelude::{DataFrame, Expr};
use serde::Serialize;

use crate::context::Context;
use crate::error::Result;
use crate::normalize::cold::RUN_ROWS;
use crate::normalize::{ColdColumns, TimeParser, Tokens};

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Credential,
    Principal,
    SourceIp,
    Network,
}

impl EntityKind {
    pub fn name(self) -> &'static str {
        match self {
            EntityKind::Credential => "credential",
            EntityKind::Principal => "principal",
            EntityKind::SourceIp => "source_ip",
            EntityKind::Network => "network",
        }
    }

    /// The event column that holds this kind of entity.
    pub fn column(self) -> &'static str {
        use crate::normalize::schema::col;
        match self {
            EntityKind::Credential => col::CREDENTIAL,
            EntityKind::Principal => col::PRINCIPAL,
            EntityKind::SourceIp => col::SOURCE_IP,
            EntityKind::Network => col::NETWORK,
        }
    }
}

impl Entity {
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        Entity {
            kind,
            id: id.into(),
        }
    }
}

/// One reason about one entity, with the evidence that supports it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub detector: &'static str,
    pub entity: Entity,
    /// Stable machine code of the reason, e.g. `used_after_owner_left`.
    pub code: &'static str,
    /// One sentence a person can read.
    pub reason: String,
    /// Strength of this signal alone, 0–100 (see `docs/scoring.md`).
    pub score: f64,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub events: u64,
    pub distinct_accounts: u64,
    /// What `distinct_accounts` counts: the accounts of access events, or the hosts or user
    /// names of logins (which have no share of the account population).
    pub counts: Counted,
    /// Instant the anomaly starts (e.g. the owner's departure), marked on charts.
    /// Labelled instants for charts; each label carries its own date.
    pub marks: Vec<(String, i64)>,
    pub related: Vec<Entity>,
    pub techniques: Vec<&'static str>,
    pub evidence: serde_json::Map<String, serde_json::Value>,
    /// Advice rather than abuse (rotate a key whose custodian left): it ranks with its own
    /// score, but the entity's exposure — events, accounts, first and last seen — comes from
    /// its other findings when it has any (see [`crate::rank`]).
    pub hygiene: bool,
}

/// What a finding's distinct "accounts" are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// Target accounts of access events: shares of the population apply.
    #[default]
    Accounts,
    /// Hosts logged into.
    Hosts,
    /// User names tried at a login.
    UserNames,
}

impl Counted {
    /// The plural noun for reports; accounts take the population's own ("customer accounts").
    pub fn noun(self, population: &population::Population) -> &'static str {
        match self {
            Counted::Accounts => population.noun(),
            Counted::Hosts => "hosts",
            Counted::UserNames => "user names",
        }
    }
}

/// Knobs shared by detectors.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Window after `revoked` in which a rotated key is still expected (rotation grace).
    pub rotation_grace_ms: i64,
    /// Longest plausible token lifetime; older tokens are suspicious and issuance coverage
    /// extends this far back.
    pub max_token_age_ms: i64,
    /// Bytes of one kind's profiles enumeration holds whole; a kind with more is profiled
    /// twice ([`enumeration::PROFILES_HELD`]).
    pub profiles_held: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            rotation_grace_ms: 48 * 3_600_000,
            max_token_age_ms: 24 * 3_600_000,
            profiles_held: enumeration::PROFILES_HELD,
        }
    }
}

/// Everything a detector may read.
pub struct DetectInput<'a> {
    pub events: &'a DataFrame,
    pub context: &'a Context,
    pub options: &'a DetectOptions,
    pub time: &'a TimeParser,
    /// Input file names by index, to point evidence at `file:line`.
    pub files: &'a [String],
    /// The token ids behind the event frame's token codes.
    pub tokens: &'a Tokens,
    /// The frame's cold columns (file, line, user agent, action), read through here only.
    pub cold: &'a ColdColumns,
    /// Where records this run makes are kept, when not in memory (see [`Self::reach`]).
    records_dir: Option<(&'a std::path::Path, bool)>,
    /// Built on first use (see [`DetectInput::reach`]).
    reach: OnceLock<crate::reduce::Reach>,
    population: OnceLock<population::Population>,
    first_token_uses: OnceLock<std::collections::HashMap<u32, i64>>,
    types: OnceLock<crate::frame::event_type::TypesByChunk>,
    end: OnceLock<Option<i64>>,
}

impl<'a> DetectInput<'a> {
    pub fn new(
        events: &'a DataFrame,
        context: &'a Context,
        options: &'a DetectOptions,
        time: &'a TimeParser,
        files: &'a [String],
        tokens: &'a Tokens,
    ) -> Self {
        DetectInput {
            events,
            context,
            options,
            time,
            files,
            tokens,
            cold: &crate::normalize::cold::IN_FRAME,
            records_dir: None,
            reach: OnceLock::new(),
            population: OnceLock::new(),
            first_token_uses: OnceLock::new(),
            types: OnceLock::new(),
            end: OnceLock::new(),
        }
    }

    /// The frame's cold columns are beside it, in `cold`.
    pub fn with_cold(mut self, cold: &'a ColdColumns) -> Self {
        self.cold = cold;
        self
    }

    /// The keys' first token-bearing uses over every row of the frame, gathered elsewhere (by
    /// ingest, per file: [`crate::ingest::coverage::first_token_uses_of`]).
    pub fn with_first_token_uses(self, first: std::collections::HashMap<u32, i64>) -> Self {
        let _ = self.first_token_uses.set(first);
        self
    }

    /// Columns `names` (cold ones too) of the events where `keep` holds: selections are a small
    /// part of the frame, materialised once, so the cold columns are read for them alone.
    pub fn rows_where(&self, keep: Expr, names: &[&str]) -> Result<DataFrame> {
        self.cold.rows_where(self.events, keep, names)
    }

    /// [`Self::rows_where`] of the rows of event types `types` alone: `keep` (a row-wise
    /// condition) is asked of the chunks that hold one of them, not of every row
    /// ([`TypesByChunk`](crate::frame::event_type::TypesByChunk)).
    pub fn rows_of_types(&self, types: &[&str], keep: Expr, names: &[&str]) -> Result<DataFrame> {
        let rows = self.types()?.rows(self.events, types, keep)?;
        self.cold.select(self.events, names, &rows)
    }

    /// [`Self::rows_of_types`] of the rows whose column `present` is not null, as `keep` cannot
    /// ask of a column beside the frame: it is read for the rows `keep` selects alone.
    pub fn present_rows_of_types(
        &self,
        types: &[&str],
        keep: Expr,
        present: &str,
        names: &[&str],
    ) -> Result<DataFrame> {
        let mut rows = Vec::new();
        self.types()?
            .rows_in_pieces(self.events, (types, keep), &mut |piece| {
                rows.extend(self.cold.rows_present(self.events, piece, present)?);
                Ok(())
            })?;
        self.cold.select(self.events, names, &rows)
    }

    /// [`Self::rows_of_types`] of the rows whose name column `name` holds one of
    /// `values`, as `keep` cannot ask of a column beside the frame: it is read for the rows
    /// `keep` selects alone, a chunk at a time, and the other columns for the rows found.
    pub fn rows_of_types_with(
        &self,
        (types, keep): (&[&str], Expr),
        name: &str,
        values: &[String],
        names: &[&str],
    ) -> Result<DataFrame> {
        let dict = crate::frame::dictionary();
        let codes: hashbrown::HashSet<u32> = values.iter().filter_map(|v| dict.code(v)).collect();
        let mut rows = Vec::new();
        if !codes.is_empty() {
            self.types()?
                .rows_in_pieces(self.events, (types, keep), &mut |piece| {
                    let kept =
                        (self.cold).rows_coded(self.events, piece, name, |c| codes.contains(&c));
                    rows.extend(kept?);
                    Ok(())
                })?;
        }
        self.cold.select(self.events, names, &rows)
    }

    /// The event types each chunk of the frame holds, found by whichever asks first.
    fn types(&self) -> Result<&crate::frame::event_type::TypesByChunk> {
        if let Some(types) = self.types.get() {
            return Ok(types);
        }
        let types = crate::frame::event_type::TypesByChunk::of(self.events)?;
        Ok(self.types.get_or_init(|| types))
    }

    /// Records this run makes are written into `dir` and read from there (see
    /// [`crate::reduce::Reduced::of_on_disk`]), with their day sets when a state keeps them.
    pub fn with_records_on_disk(mut self, dir: &'a std::path::Path, day_sets: bool) -> Self {
        self.records_dir = Some((dir, day_sets));
        self
    }

    /// Records made elsewhere (a state's, see [`crate::state::records`]) for [`Self::reach`].
    pub fn with_reach(self, reach: crate::reduce::Reach) -> Self {
        let _ = self.reach.set(reach);
        self
    }

    /// The access events reduced to records, which enumeration, the population and the charts
    /// read. Built by whichever asks first, unless given.
    pub fn reach(&self) -> Result<&crate::reduce::Reach> {
        if let Some(reach) = self.reach.get() {
            return Ok(reach);
        }
        let (time, walk) = (self.time, enumeration::WALK);
        // The reduction reads every access row's instant, target account, principal and
        // address, which wait beside the frame. Made on disk, a group of days at a time, it reads
        // each group's; in memory (a run under `--records-on-disk-from-events`), the columns are
        // put back for the reduction.
        let reach = match self.records_dir {
            Some(at) => crate::reduce::Reach::of_on_disk((self.events, self.cold), time, walk, at)?,
            None => {
                use crate::normalize::schema::col::{PRINCIPAL, SOURCE_IP, TARGET, TS};
                let beside = [TS, TARGET, PRINCIPAL, SOURCE_IP];
                let events = &self.cold.with_columns(self.events, &beside)?;
                crate::reduce::Reach::of(events, time, walk)?
            }
        };
        // Building them took several times what they keep (sort keys, rows grouped per kind):
        // handed back at once, the next stage faults in fresh pages instead of adding to this
        // high-water mark.
        crate::memory::release_freed();
        Ok(self.reach.get_or_init(|| reach))
    }

    /// Per key code, the first instant a row names it together with a token (see
    /// [`crate::reduce::tokens::first_token_uses`]), which key lifecycle and enumeration read.
    /// Built by whichever asks first: the run asks before the detectors run side by side, so
    /// they do not build it twice.
    pub fn first_token_uses(&self) -> Result<&std::collections::HashMap<u32, i64>> {
        if let Some(first) = self.first_token_uses.get() {
            return Ok(first);
        }
        let first =
            crate::reduce::tokens::first_token_uses_in_runs(self.events, self.cold, RUN_ROWS)?;
        Ok(self.first_token_uses.get_or_init(|| first))
    }

    /// The account population shares are taken of (see [`population`]).
    pub fn population(&self) -> Result<&population::Population> {
        if let Some(p) = self.population.get() {
            return Ok(p);
        }
        let p = population::Population::of(self.reach()?);
        Ok(self.population.get_or_init(|| p))
    }

    /// Whether any event has this (canonical) type, e.g. whether an issuance log was given.
    pub fn has_event_type(&self, name: &str) -> Result<bool> {
        Ok(self.types()?.holds(name))
    }

    /// The last event instant, if any; found once, as a time window's is read from beside
    /// the frame.
    pub fn events_end(&self) -> Result<Option<i64>> {
        if let Some(end) = self.end.get() {
            return Ok(*end);
        }
        let end = self.cold.ts_range(self.events)?.map(|(_, last)| last);
        Ok(*self.end.get_or_init(|| end))
    }
}

/// What the data could not tell: surfaced in the summary instead of a silent "nothing found".
#[derive(Debug, Clone, Serialize)]
pub struct Limitation {
    pub detector: &'static str,
    pub note: String,
}

/// The output of one detector run.
#[derive(Debug, Default)]
pub struct Detection {
    pub findings: Vec<Finding>,
    pub limitations: Vec<Limitation>,
}

/// The interface every detector implements; one file per detector under `detect/`.
pub trait Detector: Sync {
    fn name(&self) -> &'static str;
    fn detect(&self, input: &DetectInput) -> Result<Detection>;
    /// Over a large frame, the detectors run in waves, one after another, in this order (see
    /// [`run`]); elsewhere all run side by side.
    fn wave(&self) -> usize {
        0
    }
}

/// From this many events, detectors run in their [`Detector::wave`]s, one wave
/// after another, when the reduced records are at hand (a state's, or made on disk: see
/// [`crate::reduce::Reduced::of_on_disk`]). Enumeration's working set and
/// forged tokens' (the token facts and the judged rows) are then the two largest, about 0.6 GB
/// each over the 85.9M-event frame, and side by side they set the run's peak: over a state of
/// those events, nothing new (two alternated pairs), 6.29–6.33 GB with all five together against
/// 5.71–5.76 GB with enumeration apart, the detectors taking 9.0–9.4 s against 9.2–9.5 s; forged
/// tokens apart from the light three as well (with its facts dropped once judged), 5.34–5.44 →
/// 5.30–5.32 GB, the detectors 9.5–9.8 → 8.7–9.4 s (two alternated pairs, twenty-eighth
/// session). Reducing the frame itself, enumeration's own transient sets the
/// peak either way (the plain 85.9M-event export, one run each: 7.34 GB together, 7.37 GB in
/// waves, the detectors 27.2 against 29.0 s; in the twenty-eighth session, three waves: 6.29
/// against 6.33 GB, 30.5 against 26.4 s), so all run together. At 8.7M events (268 MB of
/// columns) enumeration is the long pole and the others fit beside it: the 10M CSV export peaks
/// at 1.1–1.2 GB with all five, and the detectors take 1.4–1.55 s instead of 1.8 s one group
/// after the other (measured when forged tokens stopped collecting its own frame of
/// token-bearing accesses, `detect::issuance`). The plain 85.9M-event export's frame (1985 MB)
/// was just under 2 GiB: once its records stage fell to 3.06 GB, all five together set the run's
/// peak at 3.11–3.13 GB, in waves 2.96–3.01 GB (forged tokens, then enumeration) for 0.4–1.3 s
/// more of 12 s (one run each with temporary probes, then two alternated pairs), so waves
/// started at 1 GiB of columns, about 46M events at that frame's 23 bytes an event.
///
/// They start at 46M events since the frame lost the principal, the address and the instants
/// (fifty-third to fifty-fifth sessions): at 2 bytes an event its size no longer said how big a
/// run was, and the 300.15M-event export's 638 MB ran all five side by side. Forged tokens,
/// which fills the headroom under the run's peak with facts, then filled it beside what the
/// others held at that moment: the run's peak 3.18–3.21 GB against ingest's 2.96 GB (one run
/// each, with probes; `--timings-per-detector` had measured offboarding +0.48 GB, login attacks
/// +0.40 GB and key lifecycle +0.14 GB alone over the 2.15 GB the run held). Login attacks now
/// run after enumeration, in a wave of their own, so that no wave holds two of those working
/// sets. Reports are the same either way (each detector reads the same input).
const APART_FROM: usize = 46_000_000;

/// Every detector's findings, in the order of `detectors`.
pub fn run(detectors: &[Box<dyn Detector>], input: &DetectInput) -> Result<Vec<Detection>> {
    run_from(detectors, input, APART_FROM)
}

fn run_from(
    detectors: &[Box<dyn Detector + '_>],
    input: &DetectInput,
    apart_from: usize,
) -> Result<Vec<Detection>> {
    let apart = input.events.height() >= apart_from && input.reach.get().is_some();
    // Without waves, every detector is in one.
    let waves: BTreeSet<usize> = match apart {
        true => detectors.iter().map(|d| d.wave()).collect(),
        false => BTreeSet::from([0]),
    };
    let mut all = Vec::new();
    for (n, wave) in waves.into_iter().enumerate() {
        if n > 0 {
            crate::memory::release_freed_everywhere();
        }
        let found: Vec<(usize, Detection)> = (detectors.par_iter().enumerate())
            .filter(|(_, d)| !apart || d.wave() == wave)
            .map(|(i, d)| Ok((i, d.detect(input)?)))
            .collect::<Result<_>>()?;
        all.extend(found);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, d)| d).collect())
}

/// All detectors, in a fixed order (the order never affects the ranking).
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(offboarding::Offboarding),
        Box::new(forged_tokens::ForgedTokens),
        Box::new(key_lifecycle::KeyLifecycle),
        Box::new(enumeration::Enumeration),
        Box::new(auth_attacks::AuthAttacks),
    ]
}

/// A base score raised with volume: `base + bonus × min(1, log10(1 + n) / 4)`, i.e. the bonus is
/// reached at 10,000 distinct accounts. Shared so every detector scales volume the same way.
pub fn volume_score(base: f64, bonus: f64, distinct_accounts: u64) -> f64 {
    let scale = ((1.0 + distinct_accounts as f64).log10() / 4.0).min(1.0);
    (base + bonus * scale).clamp(0.0, 100.0)
}

pub(crate) fn json_list<T: Serialize>(items: &[T]) -> serde_json::Value {
    serde_json::to_value(items).unwrap_or(serde_json::Value::Null)
}

pub(crate) type Evidence = serde_json::Map<String, serde_json::Value>;

pub(crate) fn evidence<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> Evidence {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod wave_tests {
    use std::sync::Mutex;

    use super::*;

    /// Logs when it starts and ends; its one finding names it, so the output order shows.
    struct Logged<'a> {
        name: &'static str,
        wave: usize,
        log: &'a Mutex<Vec<String>>,
    }

    impl Detector for Logged<'_> {
        fn name(&self) -> &'static str {
            self.name
        }
        fn detect(&self, _: &DetectInput) -> Result<Detection> {
            let note = |what: &str| {
                self.log
                    .lock()
                    .map(|mut l| l.push(format!("{} {what}", self.name)))
            };
            let _ = note("start");
            std::thread::sleep(std::time::Duration::from_millis(30));
            let _ = note("end");
            let mut d = Detection::default();
            d.limitations.push(Limitation {
                detector: self.name,
                note: String::new(),
            });
            Ok(d)
        }
        fn wave(&self) -> usize {
            self.wave
        }
    }

    fn order(apart_from: usize, given_records: bool) -> (Vec<&'static str>, Vec<String>) {
        let log = Mutex::new(Vec::new());
        let logged = |name, wave| -> Box<dyn Detector + '_> {
            Box::new(Logged {
                name,
                wave,
                log: &log,
            })
        };
        let detectors = vec![logged("a", 2), logged("b", 0), logged("c", 1)];
        let (events, context, options, tokens) = (
            DataFrame::empty(),
            Context::default(),
            DetectOptions::default(),
            Tokens::default(),
        );
        let time = TimeParser::new(chrono_tz::UTC);
        let mut input = DetectInput::new(&events, &context, &options, &time, &[], &tokens);
        if given_records {
            let (reduced, symbols) = (
                crate::reduce::Reduced::default(),
                crate::reduce::Symbols::new(),
            );
            input = input.with_reach(crate::reduce::Reach::from_parts(
                reduced,
                symbols,
                enumeration::WALK,
            ));
        }
        let found = run_from(&detectors, &input, apart_from).expect("run");
        let names = found.iter().map(|d| d.limitations[0].detector).collect();
        drop(detectors);
        (names, log.into_inner().expect("log"))
    }

    /// Over a large frame with records at hand, each wave starts once the one before has ended,
    /// whatever the detectors' order; the findings keep the detectors' order either way.
    #[test]
    fn waves_run_one_after_another_on_a_large_frame() {
        let (names, log) = order(0, true);
        assert_eq!(names, ["a", "b", "c"]);
        let at = |what: &str| log.iter().position(|l| l == what).expect(what);
        assert!(at("c start") > at("b end"), "{log:?}");
        assert!(at("a start") > at("c end"), "{log:?}");
        for (apart_from, given_records) in [(usize::MAX, true), (0, false)] {
            let (names, log) = order(apart_from, given_records);
            assert_eq!(names, ["a", "b", "c"]);
            assert_eq!(log.len(), 6);
        }
    }
}

#[cfg(test)]
mod selection_tests {
    use polars::prelude::*;

    use super::*;
    use crate::normalize::cold::{IN_FRAME, ROW};
    use crate::normalize::schema::col as c;

    /// The login rows of a few addresses and principals, found by their codes with the column
    /// beside the frame (on disk, in uneven chunks) or in it, are the rows a row-by-row reading
    /// of the frame finds, in order, with their columns; a name no row holds finds none.
    #[test]
    fn rows_of_types_with_a_few_values_are_those_rows() {
        let events = crate::frame::random::events(54, 3_000);
        let dir = tempfile::tempdir().expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&events, dir.path(), &[7, 300, 41]);
        let (context, options) = (Context::default(), DetectOptions::default());
        let (time, tokens) = (TimeParser::new(chrono_tz::UTC), Tokens::default());
        let kinds = crate::frame::strs(&events, c::EVENT_TYPE).expect("types");
        for (name, offset) in [(c::SOURCE_IP, 1), (c::PRINCIPAL, 2)] {
            let mut values: Vec<String> = crate::frame::random::some_names(&events, name, offset)
                .into_iter()
                .collect();
            values.push("nobody-at-all".into());
            let held = crate::frame::strs(&events, name).expect("values");
            let want: Vec<u32> = (0..events.height() as u32)
                .filter(|&r| kinds[r as usize] == "login" && values.contains(&held[r as usize]))
                .collect();
            assert!(
                !want.is_empty() && want.len() < 500,
                "{name}: {}",
                want.len()
            );
            for (frame, beside) in [(&hot, &cold), (&events, &IN_FRAME)] {
                let input = DetectInput::new(frame, &context, &options, &time, &[], &tokens)
                    .with_cold(beside);
                let got = input
                    .rows_of_types_with((&["login"], lit(true)), name, &values, &[ROW, name])
                    .expect("rows");
                let rows = crate::frame::u32s(&got, ROW).expect("rows");
                assert_eq!(rows, want, "{name}");
                let got_values = crate::frame::strs(&got, name).expect("values");
                assert!((rows.iter().zip(&got_values)).all(|(&r, v)| *v == held[r as usize]));
                let none = (input.rows_of_types_with((&["login"], lit(true)), name, &[], &[ROW]))
                    .expect("none");
                assert_eq!(none.height(), 0);
            }
        }
    }
}
