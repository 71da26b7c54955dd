//! Rejected records, out of memory. Every reject used to stay in RAM until the report (about 270
//! bytes each: 40 MB of bad lines took over 6 GB). Now each file's rejects go to a spill file as
//! they come, in line order, and memory keeps a sample and the counts; `rejects.csv` is the spill
//! files concatenated in file order, so the same input still gives the same bytes.
//!
//! A file lists at most [`MAX_LISTED_PER_FILE`] rejects; the rest are counted, and the summary
//! says how many were not listed. Without a spill directory (`inspect`, which writes no report)
//! only the counts and the sample are kept.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::Reject;
use crate::error::{Error, Result};

/// Rejects of one file kept in memory for the summary.
pub const SAMPLE_PER_FILE: usize = 20;
/// Rejects of one file listed in `rejects.csv` (about 30 MB of CSV); the rest are counted.
pub const MAX_LISTED_PER_FILE: u64 = 100_000;

/// One file's rejects while it is read.
pub struct Quarantine {
    file: String,
    spill_dir: Option<PathBuf>,
    /// Spill file name within the directory: the file's index and part, so names never collide.
    index: u32,
    part: u32,
    writer: Option<csv::Writer<BufWriter<File>>>,
    done: FileRejects,
}

/// One file's rejects once it is read.
#[derive(Debug, Default)]
pub struct FileRejects {
    pub file: String,
    pub sample: Vec<Reject>,
    /// Rejects listed in the spill file (or, without one, that would have been).
    pub listed: u64,
    /// Rejects beyond [`MAX_LISTED_PER_FILE`]: counted, not listed.
    pub unlisted: u64,
    /// The spill files behind `listed`, in line order (one per part of a split file).
    spills: Vec<Spill>,
}

/// One spill file: how many of its rejects are listed, and by how much to shift their line
/// numbers (a part of a split file numbers its lines from 1).
#[derive(Debug)]
struct Spill {
    path: PathBuf,
    take: u64,
    line_offset: u64,
}

impl Quarantine {
    pub fn new(file: String, index: u32, part: u32, spill_dir: Option<&Path>) -> Quarantine {
        Quarantine {
            done: FileRejects {
                file: file.clone(),
                ..FileRejects::default()
            },
            file,
            spill_dir: spill_dir.map(Path::to_path_buf),
            index,
            part,
            writer: None,
        }
    }

    /// Records one reject: sampled, listed in the spill file up to the cap, always counted.
    pub fn add(&mut self, line: u64, reason: String, raw: String) -> Result<()> {
        let reject = Reject {
            file: self.file.clone(),
            line,
            reason,
            raw,
        };
        if self.done.listed >= MAX_LISTED_PER_FILE {
            self.done.unlisted += 1;
            return Ok(());
        }
        self.done.listed += 1;
        if let Some(dir) = &self.spill_dir {
            if self.writer.is_none() {
                let path = dir.join(format!("{:08}-{:05}.csv", self.index, self.part));
                self.writer = Some(spill_writer(&path)?);
                self.done.spills.push(Spill {
                    path,
                    take: u64::MAX,
                    line_offset: 0,
                });
            }
            if let (Some(w), Some(Spill { path, .. })) = (&mut self.writer, self.done.spills.last())
            {
                let line = reject.line.to_string();
                w.write_record([&reject.file, &line, &reject.reason, &reject.raw])
                    .map_err(|e| spill_error(path, e))?;
            }
        }
        if self.done.sample.len() < SAMPLE_PER_FILE {
            self.done.sample.push(reject);
        }
        Ok(())
    }

    /// Flushes the spill file.
    pub fn finish(mut self) -> Result<FileRejects> {
        if let (Some(mut w), Some(spill)) = (self.writer.take(), self.done.spills.last_mut()) {
            w.flush().map_err(|e| Error::io(&spill.path, e))?;
            spill.take = self.done.listed;
        }
        Ok(self.done)
    }
}

impl FileRejects {
    /// Rejects kept elsewhere (a `--state` directory): `listed` of them in `spill`, written as
    /// the spill files are.
    pub fn stored(
        file: String,
        spill: Option<PathBuf>,
        listed: u64,
        unlisted: u64,
        sample: Vec<Reject>,
    ) -> FileRejects {
        FileRejects {
            file,
            sample,
            listed,
            unlisted,
            spills: spill
                .map(|path| Spill {
                    path,
                    take: listed,
                    line_offset: 0,
                })
                .into_iter()
                .collect(),
        }
    }

    /// Writes the listed rejects to `path` in the spill format (what [`Self::stored`] reads).
    pub fn write_listed(&self, path: &Path) -> Result<()> {
        let mut w = spill_writer(path)?;
        self.for_each(|r| {
            let line = r.line.to_string();
            w.write_record([&r.file, &line, &r.reason, &r.raw])
                .map_err(|e| spill_error(path, e))
        })?;
        w.flush().map_err(|e| Error::io(path, e))
    }

    /// Adds the rejects of the next part of the same file, whose lines start after
    /// `line_offset`: listed up to the file's cap as if the file had been read in one piece.
    pub fn append(&mut self, next: FileRejects, line_offset: u64) {
        for mut r in next.sample {
            if self.sample.len() >= SAMPLE_PER_FILE {
                break;
            }
            r.line += line_offset;
            self.sample.push(r);
        }
        let room = MAX_LISTED_PER_FILE.saturating_sub(self.listed);
        let listed = next.listed.min(room);
        self.unlisted += next.unlisted + (next.listed - listed);
        self.listed += listed;
        let mut budget = listed;
        for mut spill in next.spills {
            spill.take = spill.take.min(budget);
            budget -= spill.take;
            spill.line_offset += line_offset;
            if spill.take > 0 {
                self.spills.push(spill);
            }
        }
    }

    /// Every listed reject, in line order: read back from the spill file, or the sample when
    /// there was none.
    pub fn for_each(&self, mut f: impl FnMut(Reject) -> Result<()>) -> Result<()> {
        if self.spills.is_empty() {
            for r in &self.sample {
                f(r.clone())?;
            }
            return Ok(());
        }
        for Spill {
            path,
            take,
            line_offset,
        } in &self.spills
        {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_path(path)
                .map_err(|e| spill_error(path, e))?;
            for record in reader
                .records()
                .take(usize::try_from(*take).unwrap_or(usize::MAX))
            {
                let record = record.map_err(|e| spill_error(path, e))?;
                let field = |i: usize| record.get(i).unwrap_or_default().to_string();
                f(Reject {
                    file: field(0),
                    line: field(1).parse::<u64>().unwrap_or(0) + line_offset,
                    reason: field(2),
                    raw: field(3),
                })?;
            }
        }
        Ok(())
    }
}

/// A new spill file: CSV rows of file, line, reason, raw, without a header.
fn spill_writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    Ok(csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::new(file)))
}

fn spill_error(path: &Path, e: csv::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        reason: format!("reject spill file: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the cap rejects are counted, not listed; the spill reads back in order; the sample
    /// stays small.
    #[test]
    fn spills_in_order_and_counts_past_the_cap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut q = Quarantine::new("f.csv".into(), 3, 0, Some(dir.path()));
        let n = MAX_LISTED_PER_FILE + 5;
        for line in 1..=n {
            q.add(line, "bad".into(), format!("raw,\"{line}\"\n"))
                .expect("add");
        }
        let done = q.finish().expect("finish");
        assert_eq!((done.listed, done.unlisted), (MAX_LISTED_PER_FILE, 5));
        assert_eq!(done.sample.len(), SAMPLE_PER_FILE);
        let mut lines = Vec::new();
        done.for_each(|r| {
            lines.push((r.line, r.raw));
            Ok(())
        })
        .expect("read back");
        assert_eq!(lines.len() as u64, MAX_LISTED_PER_FILE);
        assert_eq!(lines[0], (1, "raw,\"1\"\n".to_string()));
        assert!(lines.windows(2).all(|w| w[0].0 < w[1].0));
        // Without a spill directory only the sample is kept.
        let mut q = Quarantine::new("g.csv".into(), 4, 0, None);
        for line in 1..=30 {
            q.add(line, "bad".into(), String::new()).expect("add");
        }
        let done = q.finish().expect("finish");
        assert_eq!((done.listed, done.sample.len()), (30, SAMPLE_PER_FILE));
    }
}
