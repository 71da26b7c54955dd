//! Token ids on disk: two files without a name in the run's scratch folder, the ids back to back
//! and where each ends (8 bytes, little-endian, one per id). Ids are appended as they are placed
//! ([`super::fingerprints`]) or all at once ([`OnDisk::write`]), and read by code with two reads
//! at an offset, or through small buffers when many codes close together are asked for in
//! order ([`OnDisk::read_each`]); not mapped: a report may name many ids (every forged token of
//! a key, when each was used once), and mapped pages it touched counted as the run's memory.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes appended ids wait in memory before they are written.
const BUFFERED: usize = 1 << 20;

pub(super) struct OnDisk {
    ids: File,
    ends: File,
    /// Ids held, written or waiting in `pending_*`.
    pub(super) count: usize,
    /// Bytes of ids held.
    bytes: u64,
    pending_ids: Vec<u8>,
    pending_ends: Vec<u8>,
    /// The folder it is in, to name in an error.
    pub(super) dir: PathBuf,
}

impl OnDisk {
    /// Empty files in `dir`.
    pub(super) fn create(dir: &Path) -> Result<OnDisk> {
        let open = || tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e));
        Ok(OnDisk {
            ids: open()?,
            ends: open()?,
            count: 0,
            bytes: 0,
            pending_ids: Vec::new(),
            pending_ends: Vec::new(),
            dir: dir.to_path_buf(),
        })
    }

    /// The ids of `arena`, each ending at its `ends`, written at once.
    pub(super) fn write(dir: &Path, arena: &str, ends: &[usize]) -> Result<OnDisk> {
        let mut disk = OnDisk::create(dir)?;
        let mut start = 0;
        for &end in ends {
            disk.push(arena.get(start..end).unwrap_or_default())
                .map_err(|e| Error::io(dir, e))?;
            start = end;
        }
        disk.release().map_err(|e| Error::io(dir, e))?;
        Ok(disk)
    }

    /// Appends `id`, coded `count` before the call.
    pub(super) fn push(&mut self, id: &str) -> std::io::Result<()> {
        self.pending_ids.extend_from_slice(id.as_bytes());
        self.bytes += id.len() as u64;
        self.pending_ends
            .extend_from_slice(&self.bytes.to_le_bytes());
        self.count += 1;
        if self.pending_ids.len() + self.pending_ends.len() >= BUFFERED {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the ids waiting in memory. Reads go by offset and leave a unix file's position
    /// alone; elsewhere they move it, so writes go to the end explicitly.
    pub(super) fn flush(&mut self) -> std::io::Result<()> {
        for (file, pending) in [
            (&mut self.ids, &mut self.pending_ids),
            (&mut self.ends, &mut self.pending_ends),
        ] {
            if !pending.is_empty() {
                file.seek(SeekFrom::End(0))?;
                file.write_all(pending)?;
                pending.clear();
            }
        }
        self.pending_ids.shrink_to(BUFFERED);
        self.pending_ends.shrink_to(BUFFERED);
        Ok(())
    }

    /// Writes the ids waiting in memory and frees their buffers: no more ids are expected.
    pub(super) fn release(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.pending_ids = Vec::new();
        self.pending_ends = Vec::new();
        Ok(())
    }

    /// Bytes held in memory.
    pub(super) fn bytes_held(&self) -> usize {
        self.pending_ids.capacity() + self.pending_ends.capacity()
    }

    /// The id of `code`, read into `buf`; `None` for a code past the table.
    pub(super) fn read<'b>(
        &mut self,
        code: u32,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<Option<&'b str>> {
        let i = code as usize;
        if i >= self.count {
            return Ok(None);
        }
        self.flush()?;
        let mut ends = [0u8; 16];
        let (from, bounds) = match i {
            0 => (0, &mut ends[8..]),
            _ => (8 * (i as u64 - 1), &mut ends[..]),
        };
        read_at(&self.ends, from, bounds)?;
        let [start, end] =
            [&ends[..8], &ends[8..]].map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        buf.resize(end.checked_sub(start).ok_or_else(damaged)? as usize, 0);
        read_at(&self.ids, start, buf)?;
        std::str::from_utf8(buf).map(Some).map_err(|_| damaged())
    }

    /// [`Self::read`] of every code of `codes` in turn, handed to `each`. Many codes close
    /// together in ascending order (a key's never-issued tokens, whose ties a sample's names
    /// are sorted from) are read through buffers, a block of ids at a time; read by offset, two
    /// system calls each, the 1.68M never-issued tokens of the 85.9M-event state's night took
    /// 0.6 s to name (`docs/performance.md`, fiftieth session). An error stops the reading.
    pub(super) fn read_each(
        &mut self,
        codes: &[u32],
        mut each: impl FnMut(Option<&str>),
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        if !dense(codes) {
            for &code in codes {
                each(self.read(code, &mut buf)?);
            }
            return Ok(());
        }
        self.flush()?;
        let (mut ids, mut ends) = (Ahead::new(&self.ids)?, Ahead::new(&self.ends)?);
        let mut bounds = [0u8; 16];
        for &code in codes {
            let i = code as usize;
            if i >= self.count {
                each(None);
                continue;
            }
            let (from, read) = match i {
                0 => (0, &mut bounds[8..]),
                _ => (8 * (i as u64 - 1), &mut bounds[..]),
            };
            ends.read_at(from, read)?;
            let [start, end] = [&bounds[..8], &bounds[8..]]
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
            buf.resize(end.checked_sub(start).ok_or_else(damaged)? as usize, 0);
            ids.read_at(start, &mut buf)?;
            each(Some(std::str::from_utf8(&buf).map_err(|_| damaged())?));
            bounds = [0; 16];
        }
        Ok(())
    }

    /// Calls `each` with every id in code order, reading the files from the start.
    pub(super) fn for_each(&mut self, mut each: impl FnMut(&str)) -> std::io::Result<()> {
        self.flush()?;
        let mut ids = BufReader::with_capacity(BUFFERED, &self.ids);
        let mut ends = BufReader::with_capacity(BUFFERED, &self.ends);
        ids.seek(SeekFrom::Start(0))?;
        ends.seek(SeekFrom::Start(0))?;
        let (mut start, mut end, mut id) = (0u64, [0u8; 8], Vec::new());
        for _ in 0..self.count {
            ends.read_exact(&mut end)?;
            let end = u64::from_le_bytes(end);
            id.resize(end.checked_sub(start).ok_or_else(damaged)? as usize, 0);
            ids.read_exact(&mut id)?;
            each(std::str::from_utf8(&id).map_err(|_| damaged())?);
            start = end;
        }
        Ok(())
    }

    /// Cuts the ids' file to `len` bytes (a test's damaged disk).
    #[cfg(test)]
    pub(super) fn damage(&mut self, len: u64) {
        let _ = self.flush();
        let _ = self.ids.set_len(len);
    }
}

/// Bytes of a file [`Ahead`] reads at once: a block of a few thousand ids, or of their ends.
const AHEAD: usize = 64 << 10;

/// Whether `codes` are worth reading through [`Ahead`]: ascending, and on average no more than
/// 64 ids apart, so that a block read holds several of them (scattered codes would read a block
/// each for one id).
fn dense(codes: &[u32]) -> bool {
    let (Some(&first), Some(&last)) = (codes.first(), codes.last()) else {
        return false;
    };
    codes.len() >= 64
        && codes.windows(2).all(|w| w[0] <= w[1])
        && u64::from(last - first) <= 64 * codes.len() as u64
}

/// A file read at ascending offsets through a buffer, so that a read near the last one costs
/// no system call.
struct Ahead<'f> {
    file: BufReader<&'f File>,
    /// The offset the buffer's next byte is at.
    at: u64,
}

impl<'f> Ahead<'f> {
    fn new(file: &'f File) -> std::io::Result<Ahead<'f>> {
        let mut file = BufReader::with_capacity(AHEAD, file);
        file.seek(SeekFrom::Start(0))?;
        Ok(Ahead { file, at: 0 })
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let jump = i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(self.at).unwrap_or(0);
        self.file.seek_relative(jump)?;
        self.file.read_exact(buf)?;
        self.at = at + buf.len() as u64;
        Ok(())
    }
}

fn damaged() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "token ids damaged")
}

#[cfg(unix)]
fn read_at(file: &File, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Codes read together give what each read alone gives: dense and ascending (through the
    /// buffers), scattered, unordered, repeated, past the table, with ids still waiting to be
    /// written, and across the buffers' blocks.
    #[test]
    fn codes_read_together_are_read_as_one_by_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let dir = tempfile::tempdir().expect("dir");
        let mut disk = OnDisk::create(dir.path()).expect("disk");
        let n = 20_000u32;
        for i in 0..n {
            let len = rng.random_range(0..40);
            let id: String = (0..len)
                .map(|k| char::from(b'a' + ((i + k) % 26) as u8))
                .collect();
            disk.push(&format!("tk-{i}-{id}")).expect("pushed");
        }
        let mut dense_seen = 0;
        for round in 0..60 {
            let mut codes: Vec<u32> = match round % 4 {
                0 => (0..rng.random_range(64..3000))
                    .map(|_| rng.random_range(0..n + 10))
                    .collect(),
                1 => {
                    let from = rng.random_range(0..n);
                    (0..rng.random_range(64..5000))
                        .map(|_| from + rng.random_range(0..200))
                        .collect()
                }
                2 => (0..n + 3).step_by(rng.random_range(1..40)).collect(),
                _ => (0..rng.random_range(0..100))
                    .map(|_| rng.random_range(0..n))
                    .collect(),
            };
            if round % 8 != 0 {
                codes.sort_unstable();
            }
            dense_seen += usize::from(dense(&codes));
            let mut buf = Vec::new();
            let want: Vec<Option<String>> = (codes.iter())
                .map(|&c| disk.read(c, &mut buf).expect("read").map(str::to_string))
                .collect();
            let mut got = Vec::new();
            (disk.read_each(&codes, |id| got.push(id.map(str::to_string)))).expect("read each");
            assert_eq!(got, want, "round {round}");
            // One more id waiting in memory is read like the others.
            disk.push("tk-late").expect("pushed");
        }
        assert!(dense_seen > 20, "{dense_seen} dense rounds");
    }
}
