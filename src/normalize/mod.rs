//! Normalisation: one canonical event schema whatever the source looked like.
//!
//! Readers hand over raw string fields; this stage turns them into typed values (UTC milliseconds,
//! lower-cased event types, a success flag) and accumulates them column-wise so the detectors get a
//! single polars frame. A row that cannot be normalised becomes a quarantined reject, never a guess.

pub mod cold;
pub mod columns;
pub(crate) mod dictionary;
pub mod jwt;
pub mod networks;
pub mod packed;
pub mod profile;
pub mod schema;
pub mod time;
mod tokens;

pub use cold::{ColdColumns, ColdSink};
pub use columns::{Dictionaries, EventColumns};
pub use schema::{Field, RawRow};
pub use time::{Days, TimeParser};
pub use tokens::Tokens;
