//! Command-line surface (clap derive) and its translation into library run plans.
//! Flags only get validated here; the library never sees clap types.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use audithound::analyze::{self, Plan};
use audithound::detect::DetectOptions;
use audithound::generate;
use audithound::normalize::TimeParser;
use audithound::rank::Severity;
use audithound::report::terminal::safe;
use clap::{Args as ClapArgs, Parser, Subcommand};

const EXIT_HELP: &str = "Exit codes: 0 ran and found nothing at or above --fail-on (default: never fail on \
findings); 1 findings at or above --fail-on; 2 error (bad input, an input file that could not be read, \
cannot write); 3 report written with --keep-going although some input could not be read.";

#[derive(Parser, Debug)]
#[command(name = "audithound", version, about = "Find insiders in exported authentication and access logs", after_help = EXIT_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse exported logs and write a ranked report.
    #[command(after_help = EXIT_HELP)]
    Analyze(Box<AnalyzeArgs>),
    /// Write a synthetic export with the insider scenario planted (tests, demos, benchmarks).
    Generate(GenerateArgs),
    /// Show what an export holds: format, records, rejects, time range, field fill, gaps per file.
    Inspect(InspectArgs),
    /// Read event files into a --state without analysing them: what each task of
    /// `analyze --cluster` runs, and a way to fill a state before its first analysis.
    Ingest(IngestArgs),
}

/// Time zone and window, shared by every command that reads events.
#[derive(ClapArgs, Debug)]
struct TimeArgs {
    /// Company time zone (IANA name): naive timestamps and roster dates are read in it.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// Only events at or after this instant (RFC 3339, date, or epoch).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this instant.
    #[arg(long)]
    to: Option<String>,
}

#[derive(ClapArgs, Debug)]
struct AnalyzeArgs {
    /// Event files or directories (recursive; CSV / JSON lines, plain, .gz or .zst).
    #[arg(default_value = "sample_logs")]
    inputs: Vec<PathBuf>,
    /// HR roster CSV (default: roster.csv inside an input directory).
    #[arg(long)]
    roster: Option<PathBuf>,
    /// Credential inventory CSV (default: credentials.csv inside an input directory).
    #[arg(long)]
    credentials: Option<PathBuf>,
    #[command(flatten)]
    read: SourceArgs,
    /// Allowlist of known jobs (TOML: entity, kind, reason, expires, owner).
    #[arg(long)]
    allowlist: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "audithound-report")]
    out: PathBuf,
    /// Replace the previous report in --out (only a directory audithound wrote; never an input,
    /// a file or a device).
    #[arg(long)]
    force: bool,
    /// Write the report even when an input file cannot be read or is truncated (exit code 3
    /// unless --fail-on gives 1); without it such a run is an error (exit code 2).
    #[arg(long)]
    keep_going: bool,
    /// Keep what was read in this directory between runs (nightly jobs): a run reads only the
    /// files the state has not seen and reports on everything it holds. See docs/scale.md.
    #[arg(long)]
    state: Option<PathBuf>,
    /// With --state: forget files whose last event falls on a local day more than this many
    /// days before the day of the newest event held (1 to 36500).
    #[arg(long, requires = "state", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    retain: Option<u32>,
    /// With --state: new files are read and stored this many bytes of them at a time (a larger
    /// file alone), so a first run over a big export holds one group's events while it reads.
    /// Reports are the same either way. See docs/scale.md.
    #[arg(long, requires = "state", default_value_t = audithound::state::GROUP_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    state_group_bytes: u64,
    /// With --state: have a Spark cluster read the files the state does not hold, each task
    /// running this binary's `ingest` (master URL: local-cluster[2,1,1024], spark://host:7077).
    /// The state, the inputs and this binary must be at the same paths on every worker; the
    /// report is the same as a local run's. See docs/scale.md.
    #[arg(long, requires = "state")]
    cluster: Option<String>,
    /// The Python with PySpark installed, for --cluster.
    #[arg(long, default_value = "python3", requires = "cluster")]
    cluster_python: PathBuf,
    /// How many tasks --cluster shares the new files into (at most one per file).
    #[arg(long, default_value_t = 16, requires = "cluster", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    cluster_tasks: u64,
    /// This binary's path on the cluster's workers (default: its path here).
    #[arg(long, requires = "cluster")]
    cluster_binary: Option<PathBuf>,
    /// Seconds the cluster may take to read the new files before the run stops it and fails (a
    /// cluster without free executors waits forever); default four hours.
    #[arg(long, default_value_t = 4 * 3600, requires = "cluster", value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    cluster_timeout: u64,
    /// Events read before the columns only a few passes read (instant, file, line, user agent,
    /// action, token, target account, principal, source address: about 44 bytes an event) go to
    /// scratch files beside --out; from there on the token ids follow them as they are placed
    /// (known in memory by a keyed fingerprint), the frame's chunks wait compressed in memory
    /// until reading ends, the frame is copied out of the memory pages parsing left it in, and its
    /// columns are made in files there, mapped, held in memory only while a pass reads them. 0
    /// does all of it from the first event. The columns also go there as soon as the token ids
    /// outgrow 128 MiB in memory, which only a big run's do. Reports are the same either way.
    /// See docs/scale.md.
    #[arg(long, default_value_t = audithound::normalize::cold::SPILL_FROM)]
    spill_from_events: u64,
    /// Events from which the access events' reduced records (enumeration's, the population's and
    /// the reach charts') are made a group of days at a time into scratch files beside --out
    /// instead of in memory, when the run has no state that keeps them; 0 always. Reports are
    /// the same either way. See docs/scale.md.
    #[arg(long, default_value_t = audithound::reduce::ON_DISK_FROM)]
    records_on_disk_from_events: u64,
    /// Distinct key ids (credential_id) up to which the event table holds them in two bytes an
    /// event instead of four, once ingest is done; 0 never. At most 65535. Reports are the same
    /// either way. See docs/scale.md.
    #[arg(long, default_value_t = audithound::frame::keys::MAX_KEYS as u64, value_parser = clap::value_parser!(u64).range(0..=audithound::frame::keys::MAX_KEYS as u64))]
    two_byte_keys_up_to: u64,
    /// Distinct key ids, and distinct event types, up to which the event table holds each in
    /// one byte an event, once ingest is done; 0 never. At most 255. Reports are the same either
    /// way. See docs/scale.md.
    #[arg(long, default_value_t = audithound::frame::keys::MAX_ONE_BYTE as u64, value_parser = clap::value_parser!(u64).range(0..=audithound::frame::keys::MAX_ONE_BYTE as u64))]
    one_byte_codes_up_to: u64,
    /// Bytes of one kind's entity profiles that enumeration holds whole; a kind with more is
    /// profiled twice, once for the peer groups and once, a batch at a time, to judge each
    /// entity. 0 always profiles twice. Reports are the same either way. See docs/scale.md.
    #[arg(long, default_value_t = audithound::detect::enumeration::PROFILES_HELD as u64)]
    profiles_held_bytes: u64,
    #[command(flatten)]
    time: TimeArgs,
    /// Hours after a credential's revocation during which its use is expected (key rotation);
    /// at most ten years.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(i64).range(0..=87_600))]
    rotation_grace_hours: i64,
    /// Longest plausible access-token lifetime, in hours (1 to ten years).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(1..=87_600))]
    max_token_age_hours: i64,
    /// Lowest severity written to the reports (totals in the summary still count everything).
    #[arg(long, default_value = "informational")]
    min_level: String,
    /// Exit with 1 when a finding reaches this severity (for scheduled jobs).
    #[arg(long)]
    fail_on: Option<String>,
    /// Outputs to write, comma-separated: csv (anomalies + rejects), jsonl, html, md, png, and
    /// ocsf (one OCSF Detection Finding per incident, for a SIEM).
    #[arg(long, default_value = "csv,jsonl,html,md,png")]
    format: String,
    /// No progress bar and no table on stdout (cron).
    #[arg(long)]
    quiet: bool,
    /// Print each stage's wall time to stderr.
    #[arg(long)]
    timings: bool,
    /// With the timings, run the detectors one after another and print each one's wall time,
    /// CPU time and memory peak, and the records stage's own peak (slower: for finding what
    /// sets the run's peak).
    #[arg(long)]
    timings_per_detector: bool,
    #[command(flatten)]
    memory: MemoryArgs,
}

/// The bound on what a run holds in memory, shared by `analyze` and `ingest`.
#[derive(ClapArgs, Debug)]
struct MemoryArgs {
    /// Stop the run (exit 2, nothing written, its scratch removed) once it holds more memory
    /// than this: a size (800M, 12G, 1.5T; powers of 1024), `auto` (90 % of the machine's
    /// memory, or of its control group's bound when lower) or `none`. Unbounded, a window too
    /// big for the machine is killed by the kernel without a word. See docs/scale.md.
    #[arg(long, default_value = "auto")]
    max_memory: String,
}

impl MemoryArgs {
    /// Starts watching the bound, before any work; `advice` is what the error tells the user to
    /// do, in the command's own terms.
    fn bound(&self, advice: &'static str) -> Result<()> {
        use audithound::memory::limit;
        let bound = match self.max_memory.as_str() {
            "none" => return Ok(()),
            "auto" => match limit::automatic() {
                Some(bound) => bound,
                None => return Ok(()),
            },
            size => limit::parse_size(size).ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid --max-memory {:?}: a size such as 800M or 12G, auto, or none",
                    safe(size)
                )
            })?,
        };
        let given = safe(&self.max_memory).into_owned();
        limit::watch(bound, move |held| {
            // No unwinding from here: the reason first (the run's own threads may fail on
            // their missing scratch after), then the scratch, then the process, with exit 2 as
            // for any error. The report and a state are replaced only by rename at the end, so
            // neither is left half written.
            eprintln!(
                "audithound: error: the run holds {} of memory, past its bound of {} \
                 (--max-memory {given}): stopped before the machine runs out, nothing written. \
                 {advice}, or raise --max-memory",
                limit::shown(held),
                limit::shown(bound),
            );
            audithound::scratch::remove_live();
            std::process::exit(2);
        });
        Ok(())
    }
}

/// How inputs are read, shared by `analyze` and `inspect`.
#[derive(ClapArgs, Debug)]
struct SourceArgs {
    /// Read every input as this source instead of detecting it: canonical, cloudtrail, okta,
    /// authlog, journald, evtx, windows (JSON export), windows-xml, entra-signin, entra-audit,
    /// gateway, ocsf, profile.
    #[arg(long)]
    source: Option<String>,
    /// Mapping profile (TOML) for exports in other shapes; see docs/profiles.md.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Year of the first classic syslog time stamp of each file (syslog omits it; a month going
    /// back, December to January, turns it); default: the latest year that does not put that
    /// stamp in the future.
    #[arg(long)]
    syslog_year: Option<i32>,
    /// Longest line or CSV record read, in bytes; a longer one is cut, rejected with its file and
    /// line, and reading resumes at the next line (1 KiB to 1 GiB).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    max_record_bytes: u64,
}

impl SourceArgs {
    fn plan(&self) -> Result<audithound::ingest::ReadPlan> {
        Ok(audithound::ingest::ReadPlan {
            source: self.source()?,
            profile: self.profile.clone(),
            syslog_year: self.syslog_year,
            max_record_bytes: self.max_record_bytes as usize,
        })
    }

    fn source(&self) -> Result<Option<audithound::ingest::Format>> {
        self.source
            .as_deref()
            .map(|s| {
                audithound::ingest::Format::parse(s)
                    .ok_or_else(|| anyhow::anyhow!("invalid --source {s:?}: use canonical, cloudtrail, okta, authlog, journald, evtx, windows, windows-xml, entra-signin, entra-audit, gateway, ocsf or profile"))
            })
            .transpose()
    }
}

#[derive(ClapArgs, Debug)]
struct InspectArgs {
    /// Event files or directories.
    #[arg(default_value = "sample_logs")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    read: SourceArgs,
    /// Time zone of naive timestamps (IANA name).
    #[arg(long, default_value = "UTC")]
    timezone: String,
}

#[derive(ClapArgs, Debug)]
struct IngestArgs {
    /// Event files or directories, found as `analyze` finds them.
    #[arg(required_unless_present = "files_from")]
    inputs: Vec<PathBuf>,
    /// The state to read them into (created if absent).
    #[arg(long)]
    state: PathBuf,
    /// Read exactly the event files this file names (NUL-separated paths) instead of inputs.
    #[arg(long, conflicts_with = "inputs")]
    files_from: Option<PathBuf>,
    #[command(flatten)]
    read: SourceArgs,
    /// Time zone of naive timestamps (IANA name); a state keeps the one it was built with.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// Store a file that cannot be read to its end, with its mark (exit code 3), instead of
    /// failing (exit code 2, nothing stored).
    #[arg(long)]
    keep_going: bool,
    /// No progress bar and no tally.
    #[arg(long)]
    quiet: bool,
    /// Files read and stored this many bytes of them at a time, as `analyze --state-group-bytes`.
    #[arg(long, default_value_t = audithound::state::GROUP_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    state_group_bytes: u64,
    #[command(flatten)]
    memory: MemoryArgs,
}

#[derive(ClapArgs, Debug)]
struct GenerateArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value_t = 120)]
    days: u32,
    #[arg(long, default_value_t = 3000)]
    customers: u32,
    #[arg(long, default_value_t = 60)]
    employees: u32,
    /// Write plain files instead of gzip / zstd.
    #[arg(long)]
    no_compress: bool,
    /// Event file layout: mixed (gateway CSV, the rest JSON lines), csv or jsonl.
    #[arg(long, default_value = "mixed", value_parser = ["mixed", "csv", "jsonl"])]
    event_format: String,
    /// Which insider to plant: the departed engineer's kept signing key (the sample), a current
    /// employee's API key scraping for weeks, or a quiet forger under the issuer's current key.
    #[arg(long, default_value = "kept-key", value_parser = ["kept-key", "scraper", "quiet-forger"])]
    variant: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Analyze(a) => analyze(*a),
        Command::Inspect(i) => {
            let tz: chrono_tz::Tz = i
                .timezone
                .parse()
                .map_err(|_| audithound::Error::TimeZone(i.timezone.clone()))?;
            let text = audithound::inspect::run(&audithound::inspect::InspectPlan {
                inputs: i.inputs.clone(),
                time: TimeParser::new(tz),
                read: i.read.plan()?,
            })?;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(i) => ingest(i),
        Command::Generate(g) => {
            let truth = generate::run(&generate::Config {
                out: g.out.clone(),
                seed: g.seed,
                days: g.days,
                customers: g.customers,
                employees: g.employees,
                compress: !g.no_compress,
                format: match g.event_format.as_str() {
                    "csv" => generate::EventFormat::Csv,
                    "jsonl" => generate::EventFormat::Jsonl,
                    _ => generate::EventFormat::Mixed,
                },
                variant: generate::Variant::parse(&g.variant).unwrap_or_default(),
            })?;
            eprintln!("wrote {} events to {}", truth.events, g.out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl SourceArgs {
    /// These flags as a command line, for a cluster task that must read as this run reads.
    fn to_args(&self, timezone: &str) -> Vec<String> {
        let mut args = vec![
            "--timezone".to_string(),
            timezone.to_string(),
            "--max-record-bytes".into(),
            self.max_record_bytes.to_string(),
        ];
        if let Some(source) = &self.source {
            args.extend(["--source".into(), source.clone()]);
        }
        if let Some(profile) = &self.profile {
            args.extend(["--profile".into(), profile.display().to_string()]);
        }
        if let Some(year) = self.syslog_year {
            args.extend(["--syslog-year".into(), year.to_string()]);
        }
        args
    }
}

fn ingest(i: IngestArgs) -> Result<ExitCode> {
    i.memory
        .bound("Read the files a smaller group at a time (--state-group-bytes)")?;
    let tz: chrono_tz::Tz = i
        .timezone
        .parse()
        .map_err(|_| audithound::Error::TimeZone(i.timezone.clone()))?;
    let files = match &i.files_from {
        Some(list) => {
            let bytes = std::fs::read(list)
                .with_context(|| format!("reading --files-from {}", list.display()))?;
            let files = bytes
                .split(|&b| b == 0)
                .filter(|name| !name.is_empty())
                .map(|name| {
                    use std::os::unix::ffi::OsStrExt;
                    PathBuf::from(std::ffi::OsStr::from_bytes(name))
                })
                .collect();
            Some(files)
        }
        None => None,
    };
    let outcome = audithound::state::task::run(&audithound::state::task::IngestPlan {
        state: i.state.clone(),
        inputs: i.inputs.clone(),
        files,
        time: TimeParser::new(tz),
        read: i.read.plan()?,
        keep_going: i.keep_going,
        progress: !i.quiet && std::io::stderr().is_terminal(),
        group_bytes: i.state_group_bytes,
    })?;
    for note in &outcome.notes {
        eprintln!("note: {}", safe(note));
    }
    for (file, reason) in &outcome.unreadable {
        let line = format!("{file}: could not be read completely: {reason}");
        eprintln!("warning: {}", safe(&line));
    }
    if !i.quiet {
        eprintln!(
            "{} file(s), {} records read, {} rejected; stored in {}",
            outcome.files,
            outcome.records,
            outcome.rejected,
            safe(&i.state.display().to_string())
        );
    }
    Ok(if outcome.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn level(flag: &'static str, value: &str) -> Result<Severity> {
    Severity::parse(value).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid {flag} {value:?}: use informational, low, medium, high or critical"
        )
    })
}

fn analyze(a: AnalyzeArgs) -> Result<ExitCode> {
    a.memory
        .bound("Analyse a shorter window (--from/--to, or --retain with a --state)")?;
    let tz: chrono_tz::Tz = a
        .time
        .timezone
        .parse()
        .map_err(|_| audithound::Error::TimeZone(a.time.timezone.clone()))?;
    let time = TimeParser::new(tz);
    let instant = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                time.start_of_day(s)
                    .map_err(|r| anyhow::anyhow!("invalid {flag}: {r}"))
            })
            .transpose()
    };
    let fail_on = a
        .fail_on
        .as_deref()
        .map(|v| level("--fail-on", v))
        .transpose()?;
    let cluster = match &a.cluster {
        Some(master) => Some(audithound::state::cluster::Cluster {
            master: master.clone(),
            python: a.cluster_python.clone(),
            binary: match &a.cluster_binary {
                Some(path) => path.clone(),
                None => std::env::current_exe().context("finding this binary for --cluster")?,
            },
            tasks: a.cluster_tasks as usize,
            read_args: a.read.to_args(&a.time.timezone),
            timings: a.timings || a.timings_per_detector,
            progress: !a.quiet && std::io::stderr().is_terminal(),
            timeout: std::time::Duration::from_secs(a.cluster_timeout),
        }),
        None => None,
    };
    let plan = Plan {
        inputs: a.inputs,
        roster: a.roster,
        credentials: a.credentials,
        allowlist: a.allowlist,
        out: a.out,
        force: a.force,
        from: instant("--from", &a.time.from)?,
        to: instant("--to", &a.time.to)?,
        time,
        options: DetectOptions {
            rotation_grace_ms: a.rotation_grace_hours * 3_600_000,
            max_token_age_ms: a.max_token_age_hours * 3_600_000,
            profiles_held: usize::try_from(a.profiles_held_bytes).unwrap_or(usize::MAX),
        },
        min_level: level("--min-level", &a.min_level)?,
        formats: audithound::report::Formats::parse(&a.format)?,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        timings: a.timings || a.timings_per_detector,
        timings_per_detector: a.timings_per_detector,
        read: a.read.plan()?,
        keep_going: a.keep_going,
        state: a.state.clone(),
        cluster,
        retain_days: a.retain,
        state_group_bytes: a.state_group_bytes,
        spill_from: a.spill_from_events,
        records_on_disk_from: a.records_on_disk_from_events,
        two_byte_keys_up_to: a.two_byte_keys_up_to as usize,
        one_byte_codes_up_to: a.one_byte_codes_up_to as usize,
    };
    let outcome = analyze::run(&plan)?;
    if !a.quiet {
        print_table(&outcome, &plan).context("writing the table to stdout")?;
    }
    let failing = fail_on.is_some_and(|lvl| outcome.ranked.iter().any(|r| r.severity >= lvl));
    Ok(if failing {
        ExitCode::from(1)
    } else if !outcome.unreadable.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

const MEMBERS_SHOWN: usize = 4;

fn table_row(
    out: &mut impl Write,
    incident: &str,
    r: &audithound::rank::Ranked,
    kind: &str,
    reasons: &str,
) -> std::io::Result<()> {
    let line = format!(
        "{:>4}  {:>6.1}  {:<13}  {:<11}  {:<28}  {:>8}  {:>8}  {}",
        incident,
        r.score,
        r.severity.name(),
        kind,
        safe(&r.entity.id),
        r.events,
        r.distinct_accounts,
        safe(reasons)
    );
    writeln!(out, "{}", line.trim_end())
}

/// Incidents, each once: its strongest row, then the other entities of the same incident
/// indented beneath it (at most [`MEMBERS_SHOWN`]; the summary lists them all).
fn print_table(outcome: &analyze::Outcome, plan: &Plan) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>4}  {:>6}  {:<13}  {:<11}  {:<28}  {:>8}  {:>8}  reasons",
        "inc", "score", "severity", "entity", "id", "events", "accounts"
    )?;
    let incidents = outcome
        .ranked
        .chunk_by(|a, b| a.incident == b.incident)
        .filter(|rows| rows[0].severity >= plan.min_level)
        .take(15);
    for rows in incidents {
        let lead = &rows[0];
        let codes: Vec<&str> = lead.reasons.iter().map(|(f, _)| f.code).collect();
        let number = lead.incident.to_string();
        let kind = lead.entity.kind.name().to_string();
        table_row(&mut out, &number, lead, &kind, &codes.join(","))?;
        for r in rows.iter().skip(1).take(MEMBERS_SHOWN) {
            table_row(&mut out, "", r, &format!("└ {}", r.entity.kind.name()), "")?;
        }
        if rows.len() > MEMBERS_SHOWN + 1 {
            writeln!(
                out,
                "{:>4}  {:>6}  {:<13}  └ {} more entities in this incident (see summary)",
                "",
                "",
                "",
                rows.len() - MEMBERS_SHOWN - 1
            )?;
        }
    }
    // The tally goes to stderr: stdout carries the ranked table only.
    eprintln!(
        "{} records read, {} rejected; report in {}",
        outcome.records,
        outcome.rejected,
        safe(&plan.out.display().to_string())
    );
    Ok(())
}
