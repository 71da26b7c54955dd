//! End-to-end tests: they run the real binary on fixtures and generated exports.

// Shared helpers: temporary directories, running the binary, reading reports.
mod util;

// Malformed input: clear errors with file and line, quarantine, exit code 2, no partial report.
mod bad_input;
// Report safety: formula neutralisation, atomic output, determinism, reconciliation.
mod output;
// --out and --force never replace an input, a file, a device or a folder audithound did not write.
mod destination;
// Hostile input: nothing lost, nothing unbounded, nothing hanging, honest exit codes.
mod hostile;
// Bulk enumeration: bursts, low and slow, walks; look-alikes rank below.
mod enumeration;
// Ranking properties on an export built in the test: exposure, certainty, one place per incident,
// local days, context semantics.
mod ranking;
// Forged and never-issued tokens, with issuance-log coverage respected.
mod tokens;
// Attacks on the login: username enumeration, spraying, brute force, host fan-out.
mod auth_attacks;
// Real formats: CloudTrail, Okta, auth.log, journald, mapping profiles, inspect.
mod sources;
// Cloud identity and lake exports: Entra ID, gateway logs with JWTs, OCSF, Parquet tables.
mod cloud_sources;
// The planted insider scenario is found and ranked, and the benign look-alikes are not.
mod scenario;
// Windows Security events: .evtx and its JSON exports, fan-out and guessed names.
mod windows;
// --state: nightly runs equal one run over the same files; nothing counted twice.
mod state;
// Keys' first token uses, kept per file and per stored file, join as one run's.
mod key_uses;
// The fuzz targets' corpora, replayed as regression tests (no fuzzing in CI).
mod fuzz_corpora;
// --cluster: a Spark cluster reads the new files into the state; the report does not change.
mod cluster;
