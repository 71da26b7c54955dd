//! Input discovery: files and directories (recursive, any mix), sorted so runs are reproducible.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What the inputs hold.
#[derive(Debug, Default, Clone)]
pub struct Discovered {
    /// Candidate event files; their format is decided from content when read.
    pub events: Vec<PathBuf>,
    /// `roster.csv` found inside an input directory.
    pub roster: Option<PathBuf>,
    /// `credentials.csv` found inside an input directory.
    pub credentials: Option<PathBuf>,
}

/// Walks the inputs. Every regular, non-hidden file is a candidate; `roster.csv` and
/// `credentials.csv` inside a directory are context.
pub fn discover(inputs: &[PathBuf]) -> Result<Discovered> {
    let mut found = Discovered::default();
    let mut visited = std::collections::HashSet::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::InputMissing {
                path: input.clone(),
            },
            _ => Error::io(input, e),
        })?;
        if !meta.is_dir() && !meta.is_file() {
            // A named pipe would block the run forever; a device holds no export.
            return Err(Error::io(
                input,
                std::io::Error::other("not a regular file or directory (a pipe, device or socket)"),
            ));
        }
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files, &mut visited)?;
            files.sort();
            for file in files {
                classify(file, true, &mut found);
            }
        } else {
            classify(input.clone(), false, &mut found);
        }
    }
    found.events.sort();
    // One file reached by two names (`current -> 2025-06-01` beside `2025-06-01`, or a hard
    // link) is read once, under the first name in sorted order; counting it twice would double
    // every finding. Identity is the device and inode; a name that cannot be read stays, to be
    // reported when opened.
    let mut identities = std::collections::HashSet::new();
    found.events.retain(|p| match std::fs::metadata(p) {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            identities.insert((m.dev(), m.ino()))
        }
        Err(_) => true,
    });
    Ok(found)
}

/// `visited` holds the canonical path of every directory walked so far, so a symlink that points
/// back up the tree (`loop -> ..`) is not followed around forever and a folder reached through
/// many links is walked once (8 levels of 6 links each took 41 s when only the current path was
/// remembered). Symlinked directories are followed otherwise: exports often link `current` to a
/// dated folder.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut std::collections::HashSet<PathBuf>,
) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        // Symlinks are followed to what they point at. A dangling one is kept, to be reported as
        // unreadable when opened (counted, not silently dropped); pipes, sockets and devices hold
        // no log and opening a pipe would block the run.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, out, visited)?,
            Ok(m) if m.is_file() => out.push(path),
            Ok(_) => {}
            Err(_) => out.push(path),
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
    found.events.push(path);
}
