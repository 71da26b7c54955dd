//! audithound: find insiders in exported authentication and access logs.
//!
//! The crate is laid out as the pipeline it runs, one module per stage:
//! [`ingest`] reads files (any mix of CSV / JSON lines, plain, gzip or zstd) →
//! [`normalize`] maps each row onto the canonical event schema →
//! [`context`] loads the HR roster and credential inventory →
//! [`detect`] runs each detector over one polars frame →
//! [`rank`] merges findings per entity and scores them →
//! [`report`] writes CSV, JSON lines, charts and the summary atomically.
//! [`analyze`] strings the stages together; [`generate`] makes synthetic exports.

pub mod analyze;
pub mod context;
pub mod detect;
pub mod error;
pub mod frame;
pub mod generate;
pub mod ingest;
pub mod inspect;
pub mod memory;
pub mod normalize;
pub mod rank;
pub mod reduce;
pub mod report;
pub mod scratch;
pub mod state;

pub use error::{Error, Result};
