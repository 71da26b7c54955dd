//! The reduced state (issue 21) against today's counting over every event, on a real export:
//! time of each, the reduced state's size per entity kind, and that both give the same profiles.
//!
//! Run: `AUDITHOUND_EXPORT=DIR [AUDITHOUND_REPEAT=N] cargo bench --bench reduce_state --
//! [reach|reduce|both]`, or `AUDITHOUND_RECORDS=STATE/records cargo bench --bench reduce_state`
//! to time reading a state's stored records and writing them again (no export read)
//! under `/usr/bin/time -v` for the peak (one mode per process for a clean peak). Without
//! `AUDITHOUND_EXPORT` it generates a 30-day, 20,000-customer export in a temporary folder.
//! Figures go in docs/scale.md.

use std::time::Instant;

use audithound::analyze::cpu_seconds;
use audithound::detect::enumeration::{WALK, WALK_MIN_STEPS};
use audithound::detect::reach::AccessRows;
use audithound::ingest::{self, ReadOptions};
use audithound::normalize::TimeParser;
use audithound::reduce::{KINDS, Reduced, Symbols};

/// As the binary runs (`src/main.rs`): its allocator and page settings decide both figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    audithound::memory::keep_freed_pages();
    audithound::memory::prefer_small_pages();
    if let Some(dir) = std::env::var_os("AUDITHOUND_RECORDS") {
        return time_records(std::path::Path::new(&dir));
    }
    let mode = std::env::args()
        .skip(1)
        .find(|a| ["reach", "reduce", "both"].contains(&a.as_str()))
        .unwrap_or_else(|| "both".into());
    let generated = tempfile::tempdir().expect("temp dir");
    let root = match std::env::var_os("AUDITHOUND_EXPORT") {
        Some(dir) => dir.into(),
        None => {
            let root = generated.path().join("export");
            audithound::generate::run(&audithound::generate::Config {
                out: root.clone(),
                seed: 1,
                days: 30,
                customers: 20_000,
                employees: 40,
                compress: false,
                format: audithound::generate::EventFormat::Mixed,
                variant: Default::default(),
            })
            .expect("generate");
            root
        }
    };
    let time = TimeParser::new(chrono_tz::UTC);
    let opts = ReadOptions::new(time, None, None, None).expect("built-in profiles");
    let found = ingest::discover(std::slice::from_ref(&root)).expect("discover");
    let start = Instant::now();
    let events = ingest::read_events(&found, &opts, false)
        .expect("ingest")
        .events;
    eprintln!(
        "ingest: {} events in {:.2?}",
        events.height(),
        start.elapsed()
    );

    // Each timed part runs `AUDITHOUND_REPEAT` times (default 1): on a shared machine the
    // fastest of a few is the figure least disturbed by others.
    let repeat: usize = std::env::var("AUDITHOUND_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let reach = (mode != "reduce").then(|| {
        let mut profiles = Vec::new();
        for _ in 0..repeat {
            let (start, cpu) = (Instant::now(), cpu_seconds());
            let rows = AccessRows::new(&events).expect("access rows");
            profiles = KINDS
                .iter()
                .map(|k| {
                    rows.profiles(&events, k, WALK, WALK_MIN_STEPS, &time)
                        .expect("profiles")
                })
                .collect();
            eprintln!(
                "reach over every event: {:.2?} ({:.2} s CPU)",
                start.elapsed(),
                cpu_seconds() - cpu
            );
        }
        profiles
    });
    if mode == "reach" {
        return;
    }
    let (mut symbols, mut reduced, mut profiles) = Default::default();
    for _ in 0..repeat {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        symbols = Symbols::new();
        reduced = Reduced::of(&events, &time, WALK, &mut symbols).expect("reduce");
        let (reduce_time, reduce_cpu) = (start.elapsed(), cpu_seconds() - cpu);
        let (start, cpu) = (Instant::now(), cpu_seconds());
        profiles = KINDS
            .iter()
            .map(|k| reduced.profiles(k, &symbols, WALK, WALK_MIN_STEPS))
            .collect::<Vec<_>>();
        eprintln!(
            "reduce: {reduce_time:.2?} ({reduce_cpu:.2} s CPU), profiles from cells: {:.2?} \
             ({:.2} s CPU)",
            start.elapsed(),
            cpu_seconds() - cpu
        );
    }
    eprintln!(
        "symbols: {} ids, {} bytes stored; accounts: {}",
        symbols.len(),
        symbols.stored_bytes(),
        reduced.accounts.len()
    );
    for k in KINDS {
        let f = reduced.footprint(k);
        eprintln!(
            "{k}: {} entities: {} in {} cells, {} of one account on {} days; {} bytes stored",
            f.entities,
            f.entities - f.singles,
            f.cells,
            f.singles,
            f.single_days,
            f.stored_bytes,
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    let bytes = audithound::reduce::store::write(dir.path(), &reduced, &symbols).expect("write");
    eprintln!("written: {bytes} bytes in {:.2?}", start.elapsed());
    for entry in std::fs::read_dir(dir.path()).expect("list").flatten() {
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        eprintln!("  {}: {size} bytes", entry.file_name().to_string_lossy());
    }
    read_back(dir.path(), &reduced);
    if let Some(want) = reach {
        for (k, (got, want)) in KINDS.iter().zip(profiles.iter().zip(&want)) {
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|((a, p), (b, q))| a == b && format!("{p:?}") == format!("{q:?}"));
            eprintln!("{k}: profiles {}", if same { "equal" } else { "DIFFER" });
        }
    }
}

/// Reads the records of a state, writes them into a temporary folder, and reads those back.
fn time_records(dir: &std::path::Path) {
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let (reduced, symbols) = audithound::reduce::store::read(dir).expect("read");
    eprintln!(
        "read {} symbols and records in {:.2?} ({:.2} s CPU)",
        symbols.len(),
        start.elapsed(),
        cpu_seconds() - cpu
    );
    let out = tempfile::tempdir().expect("temp dir");
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let bytes = audithound::reduce::store::write(out.path(), &reduced, &symbols).expect("write");
    eprintln!(
        "written: {bytes} bytes in {:.2?} ({:.2} s CPU)",
        start.elapsed(),
        cpu_seconds() - cpu
    );
    read_back(out.path(), &reduced);
}

/// Reads the records written into `dir` and says whether they are `written`.
fn read_back(dir: &std::path::Path, written: &audithound::reduce::Reduced) {
    let start = Instant::now();
    let (back, _) = audithound::reduce::store::read(dir).expect("read");
    let same = if back == *written {
        "the same records"
    } else {
        "DIFFERENT records"
    };
    eprintln!("read back in {:.2?}: {same}", start.elapsed());
}
