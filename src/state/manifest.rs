//! The manifest, `state.json`: which files a state holds, by path, size, modification time and
//! a content fingerprint, with the counts and coverage a report needs of each; the settings it
//! was read with; and which of the files a run finds it does not hold yet.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MANIFEST;
use crate::error::{Error, Result};
use crate::ingest::{self, Discovered, FileRejects, FileStats, ReadOptions, Reject};

const FORMAT: &str = "audithound-state";
/// Bumped whenever a field changes meaning; another version is refused, never guessed at.
/// Version 2 (twenty-first session): partitions may store their strings as codes of their own
/// (`partition::write`), which an older audithound would misread as text; it refuses the state
/// instead. Version 3 (twenty-third session): token ids may be codes of the partition's own too.
/// States of versions 1 and 2 are read (their partitions' layouts are read as they are) and
/// become version 3 when this build next commits them.
pub const VERSION: u32 = 3;
/// The versions this build reads.
const READS: [u32; 3] = [1, 2, 3];
/// Bytes read from each end of a file for its fingerprint.
const FINGERPRINT_BYTES: u64 = 1 << 20;

/// What decides how a file is read: a state built with other settings would mix two readings
/// of the same files, so a run with different ones is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub time_zone: String,
    pub source: Option<String>,
    /// Fingerprint of the profile file's text.
    pub profile: Option<String>,
    pub syslog_year: Option<i32>,
    pub max_record_bytes: usize,
}

impl Settings {
    pub fn of(opts: &ReadOptions, profile: Option<&Path>) -> Result<Settings> {
        let profile = match profile {
            Some(p) => Some(fingerprint(p)?),
            None => None,
        };
        Ok(Settings {
            time_zone: opts.time.tz.to_string(),
            source: opts.source.map(|f| f.name().to_string()),
            profile,
            syslog_year: opts.syslog_year,
            max_record_bytes: opts.max_record_bytes,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) settings: Settings,
    /// Next partition number: names are never reused, so a stale one is never read.
    pub(super) next_id: u64,
    pub(super) files: Vec<StoredFile>,
}

/// One input file as the state knows it.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct StoredFile {
    pub(super) path: String,
    /// The input argument it was found under (the report lists the inputs).
    pub(super) input: String,
    pub(super) size: u64,
    pub(super) modified_ns: i64,
    pub(super) fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rejects: Option<String>,
    /// Size and CRC-32 of the partition and of the rejects file as written ([`digest`]),
    /// checked before either is read: a damaged state fails the run instead of reporting on
    /// altered events. States written before the twenty-second session get theirs from the
    /// first run that reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) partition_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rejects_digest: Option<String>,
    pub(super) stats: StoredStats,
    /// Newest event of the state when the file was stored: how a file without events ages.
    #[serde(default)]
    pub(super) stored_at: Option<i64>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct StoredStats {
    pub(super) format: String,
    pub(super) records: u64,
    pub(super) parsed: u64,
    pub(super) rejected: u64,
    pub(super) ignored: u64,
    pub(super) blank: u64,
    pub(super) unreadable: Option<String>,
    pub(super) warnings: Vec<String>,
    pub(super) first: Option<i64>,
    pub(super) last: Option<i64>,
    pub(super) filled: Vec<u64>,
    pub(super) days: Vec<i64>,
    pub(super) listed: u64,
    pub(super) unlisted: u64,
    pub(super) sample: Vec<Reject>,
    /// Per key, its first token-bearing row ([`ingest::coverage::Seen::first_token_uses`]);
    /// absent from files stored before it was kept, which leaves it unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) first_token_uses: Option<BTreeMap<String, i64>>,
}

/// The manifest of the state in `dir` (a new one when it has none), checked: its format and
/// version, partition names this code gives, and the reading `settings`.
pub(super) fn load(dir: &Path, settings: &Settings) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Manifest {
                format: FORMAT.into(),
                version: VERSION,
                settings: settings.clone(),
                next_id: 0,
                files: Vec::new(),
            });
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let broken = |reason: String| Error::State {
        path: path.clone(),
        reason,
    };
    let mut manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| broken(format!("unreadable: {e}")))?;
    if manifest.format != FORMAT || !READS.contains(&manifest.version) {
        return Err(broken(format!(
            "format {} version {}; this audithound reads {FORMAT} versions {READS:?}",
            manifest.format, manifest.version
        )));
    }
    manifest.version = VERSION;
    // Partition names come from this code (`p` + eight digits); anything else in a manifest
    // was written by hand and could name a file outside the state.
    let own = |name: &Option<String>, suffix: &str| name.as_deref().is_none_or(|n| ours(n, suffix));
    if let Some(f) = manifest
        .files
        .iter()
        .find(|f| !own(&f.partition, ".parquet") || !own(&f.rejects, ".rejects.csv"))
    {
        return Err(broken(format!(
            "names a partition that audithound did not write for {}",
            f.path
        )));
    }
    if &manifest.settings != settings {
        return Err(broken(format!(
            "built with other reading settings ({:?}); this run has {:?}. Use the same \
             --timezone, --source, --profile, --syslog-year and --max-record-bytes, or a new state",
            manifest.settings, settings
        )));
    }
    Ok(manifest)
}

/// A file the state does not hold, with its identity as found.
pub(crate) struct NewFile {
    pub path: PathBuf,
    pub(super) input: String,
    pub(super) size: u64,
    pub(super) modified_ns: i64,
    pub(super) print: String,
}

/// The files of `found` that `manifest` does not hold, in order, and what the run should tell.
/// A file known by path, size and mtime is not opened; otherwise its fingerprint decides: the
/// same content under another name is noted and not read.
pub(super) fn unseen(
    manifest: &Manifest,
    found: &Discovered,
    inputs: &[PathBuf],
) -> (Vec<NewFile>, Vec<String>) {
    let mut notes = Vec::new();
    let mut new = Vec::new();
    for path in &found.events {
        let name = path.display().to_string();
        let input = inputs
            .iter()
            .find(|i| path.starts_with(i))
            .map_or_else(|| name.clone(), |i| i.display().to_string());
        let file = |size, modified_ns, print| NewFile {
            path: path.clone(),
            input: input.clone(),
            size,
            modified_ns,
            print,
        };
        // A file that cannot be looked at (a dangling link, no permission) is read like any
        // new one, so it is reported as unreadable exactly as a run without state reports it.
        let Ok((size, modified_ns)) = identity(path) else {
            new.push(file(0, 0, String::new()));
            continue;
        };
        let same_place = manifest.files.iter().any(|f| {
            f.path == name
                && f.size == size
                && f.modified_ns == modified_ns
                && f.stats.unreadable.is_none()
        });
        if same_place {
            continue;
        }
        let Ok(print) = fingerprint(path) else {
            new.push(file(size, modified_ns, String::new()));
            continue;
        };
        let twin = manifest
            .files
            .iter()
            .find(|f| f.size == size && f.fingerprint == print && f.stats.unreadable.is_none());
        if let Some(twin) = twin {
            if twin.path != name {
                notes.push(format!(
                    "{name}: same content as {} already in the state; not read again",
                    twin.path
                ));
            }
            continue;
        }
        new.push(file(size, modified_ns, print));
    }
    (new, notes)
}

impl StoredStats {
    pub(super) fn empty() -> StoredStats {
        StoredStats::of(&FileStats::default(), &FileRejects::default())
    }

    pub(super) fn of(stats: &FileStats, rejects: &FileRejects) -> StoredStats {
        StoredStats {
            format: stats.format.clone(),
            records: stats.records,
            parsed: stats.parsed,
            rejected: stats.rejected,
            ignored: stats.ignored,
            blank: stats.blank,
            unreadable: stats.unreadable.clone(),
            warnings: stats.warnings.clone(),
            first: stats.seen.first,
            last: stats.seen.last,
            filled: stats.seen.filled.to_vec(),
            days: stats.seen.days.iter().copied().collect(),
            listed: rejects.listed,
            unlisted: rejects.unlisted,
            sample: rejects.sample.clone(),
            first_token_uses: stats.seen.first_token_uses.clone(),
        }
    }

    pub(super) fn to_file_stats(&self, index: u32, path: &str) -> FileStats {
        let mut filled = [0u64; ingest::coverage::FIELDS.len()];
        for (slot, n) in filled.iter_mut().zip(&self.filled) {
            *slot = *n;
        }
        FileStats {
            index,
            file: path.to_string(),
            format: self.format.clone(),
            records: self.records,
            parsed: self.parsed,
            rejected: self.rejected,
            ignored: self.ignored,
            blank: self.blank,
            unreadable: self.unreadable.clone(),
            warnings: self.warnings.clone(),
            seen: ingest::coverage::Seen {
                first: self.first,
                last: self.last,
                filled,
                days: self.days.iter().copied().collect(),
                first_token_uses: self.first_token_uses.clone(),
            },
        }
    }
}

/// `value` as JSON in a new file at `path`, on disk before the caller renames anything into
/// place: the manifest, and the records' own ([`records`]).
pub(super) fn write_synced(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::State {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {e}"),
    })?;
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Whether `name` is one this code gives a partition or rejects file: `p`, eight digits or more
/// (`p{id:08}`), `suffix`.
pub(super) fn ours(name: &str, suffix: &str) -> bool {
    name.strip_prefix('p')
        .and_then(|n| n.strip_suffix(suffix))
        .is_some_and(|id| id.len() >= 8 && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Newest event among the files.
pub(super) fn newest(files: &[StoredFile]) -> Option<i64> {
    files.iter().filter_map(|f| f.stats.last).max()
}

/// Size and modification time (ns since the epoch) of a file.
pub(super) fn identity(path: &Path) -> Result<(u64, i64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Ok((meta.len(), modified))
}

/// Size and CRC-32 of the whole file, for a file this state wrote (see
/// [`StoredFile::partition_digest`]). CRC-32 finds the flipped bits and cut ends of a damaged
/// disk or copy; it is no seal against someone who can rewrite the manifest too.
pub(super) fn digest(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut crc = flate2::CrcWriter::new(std::io::sink());
    let size = std::io::copy(&mut file, &mut crc).map_err(|e| Error::io(path, e))?;
    Ok(format!("{size:x}-{:08x}", crc.crc().sum()))
}

/// Fails, naming `path`, when its [`digest`] is not `want`; `then`: what the reader should do
/// about it, appended to the reason.
pub(super) fn check_digest(path: &Path, want: &str, then: &str) -> Result<()> {
    let found = digest(path)?;
    if found == want {
        return Ok(());
    }
    Err(Error::State {
        path: path.to_path_buf(),
        reason: format!("damaged: size and CRC-32 {found}, written as {want}{then}"),
    })
}

/// Size and CRC-32 of the first and last MiB: tells a re-delivered file (same content under
/// another name or time) from a new one without reading all of it.
pub(super) fn fingerprint(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut crc = flate2::Crc::new();
    let mut buf = Vec::new();
    (&mut file)
        .take(FINGERPRINT_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    crc.update(&buf);
    if size > FINGERPRINT_BYTES {
        buf.clear();
        file.seek(SeekFrom::Start(
            size.saturating_sub(FINGERPRINT_BYTES)
                .max(FINGERPRINT_BYTES),
        ))
        .map_err(|e| Error::io(path, e))?;
        file.take(FINGERPRINT_BYTES)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        crc.update(&buf);
    }
    Ok(format!("{size:x}-{:08x}", crc.sum()))
}
