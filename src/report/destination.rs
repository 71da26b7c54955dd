//! Where a report may go, and how it replaces the previous one without ever destroying anything
//! that audithound did not write.
//!
//! audithound runs as root from cron on folders full of evidence, so `--out` is treated as hostile:
//! it is resolved once (symlinks and `..` followed to the real place), refused when it is a file,
//! a device, a symbolic link, an input or a folder that contains or lies inside one, and an
//! existing non-empty directory is replaced only with `--force` *and* only when it carries the
//! [`MARKER`] file that every report holds. The final rename never replaces what appeared
//! meanwhile (`renameat2(RENAME_NOREPLACE)` on Linux), so concurrent runs with one `--out` fail
//! instead of overwriting each other.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::scratch::Scratch;

/// Written first into every report; its presence is what makes a directory replaceable.
pub const MARKER: &str = ".audithound-report";
const MARKER_TEXT: &str = "This directory is a report written by audithound.\n\
`audithound analyze --force` may replace it; --force replaces no directory without this file.\n";

/// A validated destination: the resolved path and whether a previous report is to be replaced.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `--out` with every symlink and `..` resolved, so later checks and the rename act on the
    /// place that was checked.
    pub path: PathBuf,
    force: bool,
}

/// What is at the destination, once checked to be replaceable.
enum Target {
    Absent,
    EmptyDir,
    /// A non-empty directory carrying the marker (only with `--force`).
    Report,
}

fn refuse(path: &Path, reason: impl Into<String>) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Destination {
    /// Checks `out` before any work is done, against every file the run reads (`inputs`: event
    /// inputs and context files as given on the command line).
    pub fn check(out: &Path, force: bool, inputs: &[PathBuf]) -> Result<Destination> {
        let path = resolve(out)?;
        let dest = Destination { path, force };
        for input in inputs {
            let Ok(input) = std::fs::canonicalize(input) else {
                continue;
            };
            let why = if input == dest.path {
                Some("it is an input of this run".to_string())
            } else if input.starts_with(&dest.path) {
                Some(format!("it contains the input {}", input.display()))
            } else if dest.path.starts_with(&input) {
                Some(format!(
                    "it lies inside the input {} (the report would be read back as input)",
                    input.display()
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(refuse(out, why));
            }
        }
        dest.check_target(out)?;
        Ok(dest)
    }

    /// What is at the destination now, if it may be replaced (re-checked right before the
    /// rename).
    fn check_target(&self, shown: &Path) -> Result<Target> {
        let meta = match std::fs::symlink_metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Absent),
            Err(e) => return Err(Error::io(shown, e)),
        };
        if meta.file_type().is_symlink() {
            return Err(refuse(
                shown,
                "it is a symbolic link; name the directory itself",
            ));
        }
        if !meta.is_dir() {
            return Err(refuse(
                shown,
                "it is not a directory (a file, device or pipe); audithound writes a report directory and never replaces anything else",
            ));
        }
        let empty = std::fs::read_dir(&self.path)
            .map_err(|e| Error::io(shown, e))?
            .next()
            .is_none();
        if empty {
            return Ok(Target::EmptyDir);
        }
        if !self.force {
            return Err(Error::OutputNotEmpty {
                path: shown.to_path_buf(),
            });
        }
        let marked = std::fs::symlink_metadata(self.path.join(MARKER)).is_ok_and(|m| m.is_file());
        if !marked {
            return Err(refuse(
                shown,
                format!(
                    "it is not empty and was not written by audithound (no {MARKER} file); --force only replaces audithound's own reports"
                ),
            ));
        }
        Ok(Target::Report)
    }

    /// The folder beside the destination where the report is written before the rename.
    pub fn parent(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    }

    /// A temporary directory beside the destination (same file system, so the finished report
    /// renames into place), removed when dropped unless kept, and removed by a later run if
    /// this one dies with it (see [`crate::scratch`]).
    pub fn scratch(&self, prefix: &str) -> Result<Scratch> {
        let parent = self.parent();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        Scratch::new_in(&parent, prefix)
    }

    /// Moves the finished report at `tmp` into place. A previous report is moved aside first and
    /// deleted only once the new one is in place; if anything appeared at the destination
    /// meanwhile, nothing is replaced and the run fails.
    pub fn install(&self, tmp: &Path) -> Result<()> {
        match self.check_target(&self.path)? {
            Target::Absent => return rename_new(tmp, &self.path),
            Target::EmptyDir => {
                // Nothing to keep; remove_dir fails if a file arrived since the check.
                std::fs::remove_dir(&self.path).map_err(|e| Error::io(&self.path, e))?;
                return rename_new(tmp, &self.path);
            }
            Target::Report => {}
        }
        let parent = self.parent();
        let old = tempfile::Builder::new()
            .prefix(".audithound-old-")
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let aside = old.path().join("previous");
        std::fs::rename(&self.path, &aside).map_err(|e| Error::io(&self.path, e))?;
        if let Err(e) = rename_new(tmp, &self.path) {
            // Put the previous report back; if even that fails, keep it where it is.
            if rename_new(&aside, &self.path).is_err() {
                let kept = old.keep();
                return Err(refuse(
                    &self.path,
                    format!("{e}; the previous report is kept at {}", kept.display()),
                ));
            }
            return Err(e);
        }
        // `old` (the previous report, checked to carry the marker) is deleted when dropped here.
        Ok(())
    }
}

/// Writes the marker into a report being built.
pub fn mark(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER);
    std::fs::write(&path, MARKER_TEXT).map_err(|e| Error::io(&path, e))
}

/// Renames `from` to `to`, failing if `to` exists by then.
fn rename_new(from: &Path, to: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
        if let (Some(f), Some(t)) = (c(from), c(to)) {
            // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    f.as_ptr(),
                    libc::AT_FDCWD,
                    t.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => return Err(appeared(to)),
                // Filesystems without the flag fall through to the portable path.
                Some(libc::EINVAL) | Some(libc::ENOSYS) => {}
                _ => return Err(Error::io(to, err)),
            }
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(appeared(to));
    }
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))
}

fn appeared(to: &Path) -> Error {
    refuse(
        to,
        "something appeared there during the run (another run with the same --out?); nothing was replaced",
    )
}

/// Absolute form of `out` with symlinks and `..` resolved for the part that exists; the part
/// that does not exist yet is normalised lexically (it holds no symlink to follow). The last
/// component is kept as it is when it is a symlink, so [`Destination::check`] can refuse it.
pub(crate) fn resolve(out: &Path) -> Result<PathBuf> {
    let absolute = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(out, e))?
            .join(out)
    };
    let parts: Vec<Component> = absolute.components().collect();
    let mut path = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Component::Prefix(_) | Component::RootDir => path.push(part.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                path.pop();
            }
            Component::Normal(name) => {
                path.push(name);
                let last = i + 1 == parts.len();
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() && last => {}
                    Ok(_) => path = std::fs::canonicalize(&path).map_err(|e| Error::io(out, e))?,
                    Err(_) => {}
                }
            }
        }
    }
    if path.parent().is_none() {
        return Err(refuse(out, "it is the root of the file system"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_dotdot_through_missing_folders() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(dir.path()).expect("canon");
        std::fs::create_dir(root.join("logs")).expect("mkdir");
        let r = resolve(&root.join("new/../logs")).expect("resolves");
        assert_eq!(r, root.join("logs"));
    }

    #[test]
    fn resolve_follows_symlinked_parents() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(dir.path()).expect("canon");
        std::fs::create_dir(root.join("logs")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("logs"), root.join("link")).expect("link");
        let r = resolve(&root.join("link/report")).expect("resolves");
        assert_eq!(r, root.join("logs/report"));
    }
}
