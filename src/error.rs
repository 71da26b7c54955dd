//! Typed errors of the library. Every variant that stems from input names the file (and the line when
//! there is one) so that a security engineer can go straight to the offending record.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a run. Malformed event lines are *not* errors: they are quarantined (see
/// [`crate::ingest::Reject`]) so one bad line never hides a whole export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: input does not exist")]
    InputMissing { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: header is missing column(s) {missing}; found: {found}")]
    ContextHeader {
        path: PathBuf,
        missing: String,
        found: String,
    },
    #[error("{path}:{line}: {reason}")]
    ContextLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("unknown time zone {0:?} (use an IANA name such as Asia/Seoul or UTC)")]
    TimeZone(String),
    #[error("invalid {what} {value:?}: {reason}")]
    Argument {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("{path}: output directory is not empty (pass --force to replace it)")]
    OutputNotEmpty { path: PathBuf },
    #[error("refusing to write the report to {path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error(
        "{count} input file(s) could not be read completely (first: {first}); no report was written. Pass --keep-going to report on what could be read"
    )]
    InputIncomplete { count: usize, first: String },
    #[error("no event files found in the inputs")]
    NoEvents,
    #[error("state {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("data frame operation failed in {stage}: {}", first_line(source))]
    Frame {
        stage: &'static str,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    /// `--cluster`: the driver or one of its tasks failed; nothing was stored.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A broken promise between two stages of this program, never a property of the input.
    #[error("internal error: {0}")]
    Internal(String),
}

/// polars appends the whole query plan to its messages; one line is what a user can act on.
fn first_line(e: &polars::error::PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attach the pipeline stage to a polars error so the message says where it failed.
pub trait FrameContext<T> {
    fn stage(self, stage: &'static str) -> Result<T>;
}

impl<T> FrameContext<T> for polars::error::PolarsResult<T> {
    fn stage(self, stage: &'static str) -> Result<T> {
        self.map_err(|source| Error::Frame { stage, source })
    }
}
