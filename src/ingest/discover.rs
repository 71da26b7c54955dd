//! Input discovery: files and directories (recursive, any mix), sorted so runs are reproducible.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How an event file is parsed, decided from its name with compression suffixes removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let stem = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".zst"))
            .or_else(|| name.strip_suffix(".zstd"))
            .unwrap_or(&name);
        if stem.ends_with(".csv") {
            Some(Format::Csv)
        } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json") {
            Some(Format::JsonLines)
        } else {
            None
        }
    }
}

/// What the inputs hold.
#[derive(Debug, Default, Clone)]
pub struct Discovered {
    pub events: Vec<(PathBuf, Format)>,
    /// `roster.csv` found inside an input directory.
    pub roster: Option<PathBuf>,
    /// `credentials.csv` found inside an input directory.
    pub credentials: Option<PathBuf>,
    pub skipped: Vec<PathBuf>,
}

/// Walks the inputs. A named file that is not a known format is still read as the format its
/// name suggests would be a guess, so it is skipped and reported like any other unknown file.
pub fn discover(inputs: &[PathBuf]) -> Result<Discovered> {
    let mut found = Discovered::default();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::InputMissing {
                path: input.clone(),
            },
            _ => Error::io(input, e),
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            files.sort();
            for file in files {
                classify(file, true, &mut found);
            }
        } else {
            classify(input.clone(), false, &mut found);
        }
    }
    found.events.sort();
    found.events.dedup();
    found.skipped.sort();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() || kind.is_symlink() {
            out.push(path);
        }
    }
    Ok(())
}

fn classify(path: PathBuf, in_directory: bool, found: &mut Discovered) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if in_directory && name == "roster.csv" {
        found.roster.get_or_insert(path);
        return;
    }
    if in_directory && name == "credentials.csv" {
        found.credentials.get_or_insert(path);
        return;
    }
    match Format::from_path(&path) {
        Some(format) => found.events.push((path, format)),
        None => found.skipped.push(path),
    }
}
