//! `generate`: a realistic synthetic export with the incident planted among benign look-alikes.
//!
//! It exists for three users: the README's first command (the committed `sample_logs/`), the
//! tests (several seeds), and the benchmarks (sizes up to tens of GB, so it streams day by day and
//! never holds more than one day of events). The same seed always gives the same bytes.

mod world;
mod writers;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
pub use world::World;
pub use writers::EventFormat;
use writers::Outputs;

/// Size and shape of the synthetic export.
#[derive(Debug, Clone)]
pub struct Config {
    pub out: PathBuf,
    pub seed: u64,
    pub days: u32,
    pub customers: u32,
    pub employees: u32,
    /// Compress the event files (gzip / zstd, mixed like real exports); off for raw-speed benches.
    pub compress: bool,
    pub format: EventFormat,
    pub variant: Variant,
}

/// Which insider is planted. The detectors were tuned on `KeptKey`; the others are there so that
/// passing on this generator means more than passing on the case it was built around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// A departed engineer's signing key minting tokens for a walk through the accounts.
    #[default]
    KeptKey,
    /// A current employee's API key reading 2 % of the customers a day, in random order, for the
    /// last four weeks and still at it on the last day; no departed custodian involved.
    Scraper,
    /// The issuer's current signing key used from one outside address for 20–40 tokens a day the
    /// issuer never issued, for three weeks, random victims: small, quiet, and proof.
    QuietForger,
}

impl Variant {
    pub fn parse(name: &str) -> Option<Variant> {
        match name {
            "kept-key" => Some(Variant::KeptKey),
            "scraper" => Some(Variant::Scraper),
            "quiet-forger" => Some(Variant::QuietForger),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::KeptKey => "kept-key",
            Variant::Scraper => "scraper",
            Variant::QuietForger => "quiet-forger",
        }
    }
}

/// Where the scenario was planted; written to `.truth.json` (hidden, so `analyze` never reads it)
/// for tests and for people checking the tool.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Truth {
    /// The planted variant and the entities of its incident, the lead first: the incident a
    /// security team must see at the top.
    pub variant: String,
    pub planted: Vec<String>,
    pub abused_key: String,
    pub custodian: String,
    pub custodian_left: String,
    pub abuse_start_day: u32,
    pub abuse_start: String,
    pub attacker_ips: Vec<String>,
    pub attacker_network: String,
    pub burst_principal: String,
    pub burst_day: u32,
    pub nightly_key: String,
    pub nightly_principal: String,
    pub nightly_source: String,
    pub rotated_key: String,
    pub failing_principal: String,
    pub notice_principal: String,
    pub last_day_principal: String,
    pub issuer_gap_day: u32,
    pub start: String,
    pub days: u32,
    pub events: u64,
}

pub const TRUTH_FILE: &str = ".truth.json";

pub fn run(cfg: &Config) -> Result<Truth> {
    if cfg.days < 10 || cfg.customers < 100 || cfg.employees < 30 {
        return Err(Error::Argument {
            what: "generate size",
            value: format!(
                "days={} customers={} employees={}",
                cfg.days, cfg.customers, cfg.employees
            ),
            reason: "need at least 10 days, 100 customers and 30 employees to plant the scenario"
                .into(),
        });
    }
    // It writes roster.csv, credentials.csv and event files by fixed names: into a folder that
    // holds anything but an earlier generated export, that would overwrite someone's data.
    let foreign = std::fs::read_dir(&cfg.out)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or_else(|_| cfg.out.exists())
        && !cfg.out.join(TRUTH_FILE).is_file();
    if foreign {
        return Err(Error::Output {
            path: cfg.out.clone(),
            reason: format!(
                "it exists and is not an earlier generated export (no {TRUTH_FILE}); name a new folder"
            ),
        });
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let world = World::new(cfg, &mut rng);
    world.write_context(&cfg.out)?;
    let mut outputs = Outputs::create(&cfg.out, cfg.compress, cfg.format)?;
    let mut events = 0u64;
    for day in 0..cfg.days {
        let batch = world.day(day, &mut rng);
        events += batch.len() as u64;
        outputs.write_day(day, batch)?;
    }
    outputs.finish()?;
    let mut truth = world.truth();
    truth.events = events;
    write_truth(&cfg.out, &truth)?;
    Ok(truth)
}

fn write_truth(dir: &Path, truth: &Truth) -> Result<()> {
    let path = dir.join(TRUTH_FILE);
    let text =
        serde_json::to_string_pretty(truth).map_err(|e| crate::report::write_error(&path, e))?;
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// Reads the ground truth written by [`run`].
pub fn read_truth(dir: &Path) -> Result<Truth> {
    let path = dir.join(TRUTH_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::ContextLine {
        path,
        line: e.line() as u64,
        reason: e.to_string(),
    })
}
