//! `audithound ingest`: event files read into a state and nothing else, no detection, no report.
//! It is what each task of `analyze --cluster` runs (see [`super::cluster`]), and a way to fill a
//! state ahead of its first analysis. The reading is `analyze --state`'s own.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ingest::{self, Discovered};
use crate::normalize::TimeParser;

/// A validated `ingest` run.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    pub state: PathBuf,
    /// Inputs found as `analyze` finds them (folders walked, context files left out)...
    pub inputs: Vec<PathBuf>,
    /// ...or exactly these event files (a cluster task's share, found by the run that shared it).
    pub files: Option<Vec<PathBuf>>,
    pub time: TimeParser,
    pub read: ingest::ReadPlan,
    /// Store a file that could not be read to its end, with its mark, instead of failing.
    pub keep_going: bool,
    pub progress: bool,
    /// Bytes of files read and stored at a time (see [`super::GROUP_BYTES`]).
    pub group_bytes: u64,
}

/// Reads the plan's files into its state and commits it; what was read comes back with the
/// manifest already committed (`pending` is `None`), `unreadable` empty unless `keep_going`.
pub fn run(plan: &IngestPlan) -> Result<super::Added> {
    let found = match &plan.files {
        Some(files) => Discovered {
            events: files.clone(),
            ..Discovered::default()
        },
        None => ingest::discover(&plan.inputs)?,
    };
    if found.events.is_empty() && plan.files.is_none() {
        return Err(Error::NoEvents);
    }
    let reads: Vec<PathBuf> = (plan.inputs.iter().chain(&plan.read.profile))
        .chain(&found.events)
        .cloned()
        .collect();
    let store = super::Store::open(&plan.state, &reads)?;
    let mut read = plan.read.options(plan.time)?;
    // Rejects wait on disk until they are stored beside their partition; the state is locked,
    // so its scratch is nobody else's.
    let spill = crate::scratch::Scratch::new_in(&store.dir, ".audithound-rejects-")?;
    read.spill_dir = Some(spill.path().to_path_buf());
    let settings = super::Settings::of(&read, plan.read.profile.as_deref())?;
    let inputs = match &plan.files {
        Some(_) => Vec::new(),
        None => plan.inputs.clone(),
    };
    let here = super::Reading::Here {
        progress: plan.progress,
        group_bytes: plan.group_bytes,
    };
    let mut added = store.ingest(&found, &inputs, &read, &settings, here)?;
    if let Some((file, reason)) = added.unreadable.first()
        && !plan.keep_going
    {
        return Err(Error::InputIncomplete {
            count: added.unreadable.len(),
            first: format!("{file}: {reason}"),
        });
    }
    if let Some(pending) = added.pending.take() {
        pending.commit()?;
    }
    Ok(added)
}
