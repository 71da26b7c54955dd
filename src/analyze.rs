//! The `analyze` run: ingest → normalize → context → detect → rank → report, in that order.
//! [`Plan`] is the validated form of the command line (the binary builds it from its flags).

use std::path::PathBuf;

use polars::prelude::*;

use crate::context::{self, Context};
use crate::detect::{self, DetectInput, DetectOptions, Detection, Limitation};
use crate::error::{Error, FrameContext, Result};
use crate::ingest;
use crate::normalize::{ColdColumns, TimeParser};
use crate::rank::{self, Ranked, Severity};
use crate::report::{self, RunInfo};

/// A validated analyze run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub inputs: Vec<PathBuf>,
    pub roster: Option<PathBuf>,
    pub credentials: Option<PathBuf>,
    pub allowlist: Option<PathBuf>,
    pub out: PathBuf,
    pub force: bool,
    pub time: TimeParser,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub options: DetectOptions,
    pub min_level: Severity,
    pub formats: report::Formats,
    pub progress: bool,
    /// Print each stage's wall time to stderr (for profiling; never in reports, which must be
    /// byte-identical run to run).
    pub timings: bool,
    /// Run the detectors one after another, each with its own timing line and memory peak.
    pub timings_per_detector: bool,
    /// How files are read (`--source`, `--profile`, `--syslog-year`, `--max-record-bytes`).
    pub read: ingest::ReadPlan,
    /// Write the report even when some input could not be read (`--keep-going`).
    pub keep_going: bool,
    /// Keep what was read between runs here and read only new files (`--state`).
    pub state: Option<PathBuf>,
    /// Read the files the state does not hold on a Spark cluster (`--cluster`).
    pub cluster: Option<crate::state::cluster::Cluster>,
    /// Forget stored files whose last event falls on a local day more than this many days
    /// before the newest event's (`--retain`).
    pub retain_days: Option<u32>,
    /// With a state: bytes of new files read and stored at a time (`--state-group-bytes`).
    pub state_group_bytes: u64,
    /// Events read before the frame's cold columns go to disk (`--spill-from-events`; see
    /// [`crate::normalize::cold`]).
    pub spill_from: u64,
    /// Events from which records made in this run are kept on disk
    /// (`--records-on-disk-from-events`; see [`crate::reduce::Reduced::of_on_disk`]).
    pub records_on_disk_from: u64,
    /// Distinct keys up to which the frame holds them in two bytes (`--two-byte-keys-up-to`;
    /// see [`crate::frame::keys`]).
    pub two_byte_keys_up_to: usize,
    /// Distinct keys, and event types, up to which the frame holds each in one byte
    /// (`--one-byte-codes-up-to`; see [`crate::frame::keys`], [`crate::frame::event_type`]).
    pub one_byte_codes_up_to: usize,
}

/// What the binary needs to print and to choose its exit code.
pub struct Outcome {
    pub ranked: Vec<Ranked>,
    /// Input files that could not be read completely (only with `keep_going`; otherwise the
    /// run fails): the report covers less than was asked.
    pub unreadable: Vec<(String, String)>,
    pub records: u64,
    pub rejected: u64,
}

/// Wall-clock stopwatch for `--timings`, with the CPU time each stage used: CPU over wall says
/// how many of the cores a stage kept busy.
struct Stopwatch {
    on: bool,
    last: std::time::Instant,
    cpu: f64,
}

/// User plus system CPU seconds of the process so far (0 where unavailable); also what
/// `benches/reduce_state.rs` reports each step's CPU with.
pub fn cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return secs(usage.ru_utime) + secs(usage.ru_stime);
        }
    }
    0.0
}

impl Stopwatch {
    fn lap(&mut self, what: &str) {
        if self.on {
            // Resident memory now and at its peak so far (Linux), to see which stage sets the
            // high-water mark and what it leaves behind.
            let cpu = cpu_seconds();
            let [rss, peak] = crate::memory::statuses(["VmRSS:", "VmHWM:"]);
            eprintln!(
                "timing: {what:<28} {:>8.3} s   cpu {:>7.3} s   rss {rss:>12}   peak {peak:>12}",
                self.last.elapsed().as_secs_f64(),
                cpu - self.cpu,
            );
            self.cpu = cpu;
        }
        self.last = std::time::Instant::now();
    }
}

pub fn run(plan: &Plan) -> Result<Outcome> {
    let mut clock = Stopwatch {
        on: plan.timings,
        last: std::time::Instant::now(),
        cpu: cpu_seconds(),
    };
    let found = ingest::discover(&plan.inputs)?;
    if found.events.is_empty() {
        return Err(Error::NoEvents);
    }
    // Before any work: a report that cannot go where asked fails in a second, and nothing the
    // run reads can be replaced by it.
    let read_paths: Vec<PathBuf> = plan
        .inputs
        .iter()
        .chain(&plan.roster)
        .chain(&plan.credentials)
        .chain(&plan.allowlist)
        .chain(&plan.read.profile)
        .cloned()
        .collect();
    let dest = report::Destination::check(&plan.out, plan.force, &read_paths)?;
    for name in crate::scratch::sweep(&dest.parent()) {
        let line = format!("removed {name}, scratch that a run which died left beside the report");
        eprintln!("note: {}", report::terminal::safe(&line));
    }
    let mut context = load_context(plan, &found)?;
    let mut read = plan.read.options(plan.time)?;
    // Rejects wait on disk beside the report for `rejects.csv` (see `ingest::quarantine`), where
    // the report itself is assembled; removed when the run ends, whatever happens.
    let spill = dest.scratch(".audithound-rejects-")?;
    read.spill_dir = Some(spill.path().to_path_buf());
    // The columns only evidence reads wait beside the frame, on disk past `spill_from` events,
    // in scratch of their own; a state run puts them back into each new file's partition, and
    // takes them out again as it reads its partitions back.
    let cold_dir = dest.scratch(".audithound-cold-")?;
    let sink = crate::normalize::ColdSink::new(cold_dir.path(), plan.spill_from);
    read.cold = Some(std::sync::Arc::new(sink));
    read.two_byte_keys_up_to = plan.two_byte_keys_up_to;
    read.one_byte_codes_up_to = plan.one_byte_codes_up_to;
    // Loaded before the heavy work so a broken allowlist fails in a second, not after the scan.
    let allowlist = match &plan.allowlist {
        Some(p) => context::load_allowlist(p, &plan.time)?,
        None => Vec::new(),
    };
    let mut inputs: Vec<String> = plan
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // Sorted: the analysis does not depend on argument order, so neither does the report.
    inputs.sort();
    let mut event_paths = found.events.clone();
    let mut state = None;
    let mut ingested = match &plan.state {
        None => ingest::read_events(&found, &read, plan.progress)?,
        Some(dir) => {
            let apart: Vec<PathBuf> = read_paths.iter().chain([&plan.out]).cloned().collect();
            let store = crate::state::Store::open(dir, &apart)?;
            let settings = crate::state::Settings::of(&read, plan.read.profile.as_deref())?;
            let update = store.update(
                &found,
                &plan.inputs,
                &read,
                &settings,
                plan.retain_days,
                match &plan.cluster {
                    Some(cluster) => crate::state::Reading::Cluster(cluster),
                    None => crate::state::Reading::Here {
                        progress: plan.progress,
                        group_bytes: plan.state_group_bytes,
                    },
                },
            )?;
            for note in &update.notes {
                eprintln!("note: {}", report::terminal::safe(note));
            }
            event_paths = update.paths;
            inputs = update.inputs;
            state = Some((store, update.pending, update.covers));
            update.ingested
        }
    };
    // Sealed already: by `read_events` when reading ended, or by the state's read-back.
    let token_bytes = ingested.tokens.bytes_while_placed();
    // Past `spill_from` events the token ids wait on disk too, in the cold columns' scratch
    // (a state's run put them there before reading its partitions back): only evidence reads
    // them, a few ids a report names. A disk that refuses them costs memory, not the run.
    let height = ingested.events.height() as u64;
    if let Some(dir) = read.cold.as_deref().and_then(|sink| sink.past(height))
        && let Err(e) = ingested.tokens.to_disk(dir)
    {
        eprintln!(
            "note: token ids kept in memory: {}",
            report::terminal::safe(&e.to_string())
        );
    }
    // The keys and event types in fewer bytes where the run's fit (see `frame::keys`,
    // `frame::event_type`); ingest may have done it already.
    let widths = read.narrowing().narrow(&mut ingested.events)?;
    crate::frame::dictionary().seal();
    crate::memory::release_freed_everywhere();
    crate::memory::fit_to_run(ingested.events.height() as u64);
    clock.lap("ingest");
    let (frame_files, refused) = crate::memory::frame_files();
    if let Some(why) = refused {
        let line = format!(
            "the frame's columns held in memory past {} MB of files: {why}",
            frame_files >> 20
        );
        eprintln!("note: {}", report::terminal::safe(&line));
    }
    if plan.timings {
        eprintln!(
            "timing:   event frame {} rows, {} MB in columns ({} MB of files mapped; keys in {} byte(s), event types in {}), {} names in the run's dictionary ({} MB); {} token ids, {} MB ({} MB while read)",
            ingested.events.height(),
            ingested.events.estimated_size() >> 20,
            frame_files >> 20,
            widths.keys,
            widths.event_types,
            crate::frame::dictionary().len(),
            crate::frame::dictionary().bytes() >> 20,
            ingested.tokens.len(),
            ingested.tokens.bytes() >> 20,
            token_bytes >> 20
        );
    }
    let unreadable: Vec<(String, String)> = ingested
        .files
        .iter()
        .filter_map(|f| Some((f.file.clone(), f.unreadable.clone()?)))
        .collect();
    for (file, reason) in &unreadable {
        let line = format!("{file}: could not be read completely: {reason}");
        eprintln!("warning: {}", report::terminal::safe(&line));
    }
    if let Some((file, reason)) = unreadable.first()
        && !plan.keep_going
    {
        return Err(Error::InputIncomplete {
            count: unreadable.len(),
            first: format!("{file}: {reason}"),
        });
    }
    for f in &ingested.files {
        for w in &f.warnings {
            let line = format!("{}: {w}", f.file);
            eprintln!("warning: {}", report::terminal::safe(&line));
        }
    }
    for (path, reason) in &ingested.skipped {
        let line = format!("{}: skipped: {reason}", path.display());
        eprintln!("warning: {}", report::terminal::safe(&line));
    }
    let derived =
        context::derive_from_events(&ingested.events, &ingested.cold, &mut context, &plan.time)?;
    let total = ingested.events.height() as u64;
    let (events, kept) = window(ingested.events, &ingested.cold, plan.from, plan.to)?;
    let windowed = kept.is_some();
    if let Some(kept) = kept {
        ingested.cold.retain(&kept);
    }
    let files: Vec<String> = event_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();

    let mut input = DetectInput::new(
        &events,
        &context,
        &plan.options,
        &plan.time,
        &files,
        &ingested.tokens,
    )
    .with_cold(&ingested.cold);
    // Ingest noted each file's first token uses; a time window leaves rows out of them.
    if !windowed && let Some(first) = crate::ingest::coverage::first_token_uses_of(&ingested.files)
    {
        input = input.with_first_token_uses(first);
    }
    // A state keeps the window's reduced records; `--from`/`--to` narrow the window to other
    // records, which this run builds from its frame and does not store.
    let records = match &state {
        Some((store, _, covers)) if !windowed => {
            let walk = detect::enumeration::WALK;
            let frame = (&events, &ingested.cold);
            let (reach, made) =
                crate::state::records::reach(store.dir(), covers, frame, &plan.time, walk)?;
            if let Some(reach) = reach {
                input = input.with_reach(reach);
            }
            if let crate::state::records::Made::Unusable(why) = &made {
                let line = format!("stored records not used: {why}");
                eprintln!("note: {}", report::terminal::safe(&line));
            }
            clock.lap(&format!("records: {made}"));
            Some(made)
        }
        _ => None,
    };
    // Records made here from a big frame are made on disk before the detectors, which then run
    // in waves as over a state's (`detect::run`): a state's, where `save` renames them into
    // place; a run without one, in scratch beside the report.
    let kept = matches!(records, Some(crate::state::records::Made::Kept { .. }));
    let on_disk = !kept && events.height() as u64 >= plan.records_on_disk_from;
    let (_records_scratch, records_dir) = match (&state, &records) {
        _ if !on_disk => (None, None),
        (Some((store, ..)), Some(_)) => (None, Some(crate::state::records::fresh(store.dir())?)),
        _ => {
            let scratch = dest.scratch(".audithound-records-")?;
            let dir = scratch.path().to_path_buf();
            (Some(scratch), Some(dir))
        }
    };
    if let Some(dir) = &records_dir {
        // A state keeps the records' day sets; scratch records need none.
        input = input.with_records_on_disk(dir, state.is_some());
        // Its own peak, as each detector's below.
        if plan.timings_per_detector {
            crate::memory::reset_peak();
        }
        input.reach()?;
        clock.lap("records: made on disk");
    }
    let mut findings = Vec::new();
    let mut limitations: Vec<Limitation> = derived
        .into_iter()
        .map(|note| Limitation {
            detector: "context",
            note,
        })
        .collect();
    // The detectors run side by side, or in two waves over a large frame (`detect::run`).
    let spinner = stage(plan.progress, "detecting");
    // Two detectors read the keys' first token-bearing uses: found once here, not by each of
    // them side by side.
    input.first_token_uses()?;
    clock.lap("first token uses");
    let detectors = detect::all();
    let detections = if plan.timings_per_detector {
        let mut each = Vec::new();
        for d in &detectors {
            crate::memory::release_freed();
            crate::memory::reset_peak();
            let from = crate::memory::status("VmRSS:");
            each.push(d.detect(&input)?);
            clock.lap(&format!("  {} (from {from})", d.name()));
        }
        each
    } else {
        detect::run(&detectors, &input)?
    };
    crate::memory::release_freed();
    // What follows stands below the detectors' peak: freed pages may wait to be reused.
    crate::memory::off_peak();
    clock.lap("detectors");
    drop(spinner);
    let spinner = stage(plan.progress, "ranking and writing the report");
    for Detection {
        findings: f,
        limitations: l,
    } in detections
    {
        findings.extend(f);
        limitations.extend(l);
    }
    let (kept, suppressed, notes) =
        rank::suppress(rank::rank(findings), &allowlist, input.events_end()?);
    let (mut ranked, incidents) = rank::group(kept);
    attach_usage(&input, &mut ranked, plan.min_level)?;
    limitations.extend(notes.into_iter().map(|note| Limitation {
        detector: "allowlist",
        note,
    }));
    clock.lap("rank");

    let info = run_info(plan, inputs, &context, &input, total)?;
    // One chart set per incident, for its strongest row.
    let leads: Vec<&Ranked> = incidents
        .iter()
        .map(|i| &ranked[i.rows[0]])
        .filter(|r| r.severity >= plan.min_level)
        .collect();
    let charts = report::series::compute(&input, &leads)?;
    let coverage = ingest::coverage::coverage(&ingested.files);
    let data = report::ReportData {
        coverage: &coverage,
        ranked: &ranked,
        incidents: &incidents,
        formats: plan.formats,
        min_level: plan.min_level,
        files: &ingested.files,
        rejects: &ingested.rejects,
        suppressed: &suppressed,
        skipped: &ingested.skipped,
        limitations: &limitations,
        info: &info,
        time: &plan.time,
        charts: &charts,
    };
    clock.lap("chart series");
    // Token ids the evidence names were read from disk on a big run: one that failed must not
    // reach the report as no id.
    ingested.tokens.check()?;
    report::write(&dest, &data)?;
    // The state moves on only once its report exists: a run that fails leaves it as it was.
    if let Some((store, pending, covers)) = state {
        pending.commit()?;
        // After the manifest: records of the manifest before are what a run that dies here
        // leaves, and the next run reduces the difference.
        if let Some(made) = &records
            && let Err(e) = crate::state::records::save(store.dir(), input.reach()?, &covers, made)
        {
            let line =
                format!("the reduced records were not stored ({e}): the next run rebuilds them");
            eprintln!("warning: {}", report::terminal::safe(&line));
        }
    }
    clock.lap("report");
    drop(spinner);
    Ok(Outcome {
        unreadable,
        records: ingested.files.iter().map(|f| f.records).sum(),
        rejected: ingested.files.iter().map(|f| f.rejected).sum(),
        ranked,
    })
}

/// A spinner naming the stage under way, with its elapsed time, on a terminal only (stderr; stdout
/// carries the table alone). Cleared when dropped.
fn stage(show: bool, what: &'static str) -> Option<Spinner> {
    show.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(what);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Spinner(bar)
    })
}

struct Spinner(indicatif::ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Rows whose endpoints and clients are counted for the report: the shown ones, at most this many.
const USAGE_ROWS: usize = 200;

/// Names what each shown row did and with which client (see [`detect::usage`]).
fn attach_usage(
    input: &DetectInput,
    ranked: &mut [Ranked],
    min_level: rank::Severity,
) -> Result<()> {
    let shown: Vec<detect::Entity> = ranked
        .iter()
        .filter(|r| r.severity >= min_level)
        .take(USAGE_ROWS)
        .map(|r| r.entity.clone())
        .collect();
    if shown.is_empty() {
        return Ok(());
    }
    let mut usage = detect::usage::usage(input.events, input.cold, &shown)?;
    for r in ranked.iter_mut() {
        if let Some(u) = usage.remove(&r.entity) {
            r.usage = u;
        }
    }
    Ok(())
}

/// Flags win over `roster.csv` / `credentials.csv` found in an input directory.
fn load_context(plan: &Plan, found: &ingest::Discovered) -> Result<Context> {
    let roster_path = plan.roster.clone().or_else(|| found.roster.clone());
    let credentials_path = plan
        .credentials
        .clone()
        .or_else(|| found.credentials.clone());
    let mut ctx = Context::default();
    if let Some(p) = &roster_path {
        ctx.roster = context::load_roster(p, &plan.time)?;
    }
    if let Some(p) = &credentials_path {
        ctx.credentials = context::load_credentials(p, &plan.time)?;
    }
    ctx.roster_path = roster_path;
    ctx.credentials_path = credentials_path;
    Ok(ctx)
}

/// The events within `--from` / `--to`, and which rows were kept (`None`: all). The instants
/// may wait beside the frame (`cold`), read a run at a time.
fn window(
    events: DataFrame,
    cold: &ColdColumns,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(DataFrame, Option<BooleanChunked>)> {
    if from.is_none() && to.is_none() {
        return Ok((events, None));
    }
    let kept = cold.instants_where(&events, |t| {
        from.is_none_or(|f| t >= f) && to.is_none_or(|x| t < x)
    })?;
    let events = events.filter(&kept).stage("time window")?;
    Ok((events, Some(kept)))
}

fn run_info(
    plan: &Plan,
    inputs: Vec<String>,
    ctx: &Context,
    input: &DetectInput,
    total: u64,
) -> Result<RunInfo> {
    let events = input.events;
    let time_range = input.cold.ts_range(events)?;
    Ok(RunInfo {
        inputs,
        roster: ctx.roster_path.as_ref().map(|p| p.display().to_string()),
        credentials: ctx
            .credentials_path
            .as_ref()
            .map(|p| p.display().to_string()),
        time_zone: plan.time.tz.to_string(),
        window: (plan.from, plan.to),
        events_in_window: events.height() as u64,
        events_outside_window: total - events.height() as u64,
        time_range,
        population: input.population()?.clone(),
    })
}
