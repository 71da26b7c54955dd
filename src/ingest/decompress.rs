//! Transparent decompression. The codec is chosen from the file's magic bytes, not its name,
//! because exports get renamed (`.gz` files without the suffix are common in S3 dumps).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Compression found at the start of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip,
    Zstd,
}

/// Opens `path` and returns a buffered reader over its decompressed bytes. Only regular files are
/// opened: opening a named pipe blocks until a writer comes, which for a cron job is forever.
pub fn open(path: &Path) -> Result<(Codec, Box<dyn BufRead + Send>)> {
    open_counted(path, &Counter::default())
}

/// Bytes read from files, as stored (compressed bytes for a `.gz`): what progress is shown in,
/// because a 10 GB single-file export read as "0/1 files" for minutes tells nothing.
#[derive(Clone, Default)]
pub struct Counter {
    pub bar: Option<indicatif::ProgressBar>,
    pub read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Counter {
    /// Moves the bar to the end of `path`, read through this counter: what was not (an `.evtx`
    /// parsed from disk, a file skipped, cut short or read again whole) still counts as read.
    pub fn finish_file(&self, path: &Path) {
        if let (Some(bar), Ok(meta)) = (&self.bar, std::fs::metadata(path)) {
            let read = self.read.load(std::sync::atomic::Ordering::Relaxed);
            bar.inc(meta.len().saturating_sub(read));
        }
    }
}

struct Counted {
    file: File,
    counter: Counter,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.counter
            .read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.counter.bar {
            bar.inc(n as u64);
        }
        Ok(n)
    }
}

/// [`open`], counting the bytes read from the file into `counter`.
pub fn open_counted(path: &Path, counter: &Counter) -> Result<(Codec, Box<dyn BufRead + Send>)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (a pipe, device or socket)"),
        ));
    }
    let file = Counted {
        file: File::open(path).map_err(|e| Error::io(path, e))?,
        counter: counter.clone(),
    };
    decompressed(BufReader::with_capacity(1 << 20, file)).map_err(|e| Error::io(path, e))
}

/// The decompressed bytes of any buffered stream, the codec told by its first bytes (also what
/// the fuzz targets read from memory).
pub fn decompressed<R: BufRead + Send + 'static>(
    mut stream: R,
) -> std::io::Result<(Codec, Box<dyn BufRead + Send>)> {
    let head = stream.fill_buf()?;
    let codec = if head.starts_with(&GZIP_MAGIC) {
        Codec::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Codec::Zstd
    } else {
        Codec::Plain
    };
    let reader: Box<dyn BufRead + Send> = match codec {
        Codec::Plain => Box::new(stream),
        Codec::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(stream),
        )),
        Codec::Zstd => Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::Decoder::with_buffer(stream)?,
        )),
    };
    Ok((codec, reader))
}

/// Bytes `start..end` of a plain (uncompressed) file: one part of a big file read on its own
/// core (see [`super::split`]). Counted like a whole file, so progress still adds up.
pub fn open_range(
    path: &Path,
    start: u64,
    end: u64,
    counter: &Counter,
) -> Result<Box<dyn BufRead + Send>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| Error::io(path, e))?;
    let counted = Counted {
        file,
        counter: counter.clone(),
    };
    Ok(Box::new(BufReader::with_capacity(
        1 << 20,
        counted.take(end.saturating_sub(start)),
    )))
}

/// Largest decompressed context file (roster, inventory, allowlist, profile): a roster of a
/// million people is about 100 MB; a compressed bomb stops here instead of filling memory.
pub const CONTEXT_MAX_BYTES: u64 = 128 << 20;

/// Reads the whole decompressed content of a context file, up to [`CONTEXT_MAX_BYTES`].
pub fn read_to_end(path: &Path) -> Result<Vec<u8>> {
    let (_, reader) = open(path)?;
    let mut buf = Vec::new();
    reader
        .take(CONTEXT_MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > CONTEXT_MAX_BYTES {
        return Err(Error::io(
            path,
            std::io::Error::other(format!(
                "larger than {} MiB once decompressed; a context file is a table, not an export",
                CONTEXT_MAX_BYTES >> 20
            )),
        ));
    }
    Ok(buf)
}

/// A context file as text (allowlist, profile): bounded and never blocking, like [`read_to_end`].
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_to_end(path)?)
        .map_err(|_| Error::io(path, std::io::Error::other("not valid UTF-8")))
}

#[cfg(test)]
mod counting_tests {
    use super::*;

    /// Progress counts the bytes of the file as stored: a gzip file's compressed size, not
    /// what it expands to.
    #[test]
    fn counted_bytes_are_the_stored_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &b"a line of text\n".repeat(10_000)).expect("gzip");
        std::fs::write(&path, enc.finish().expect("gzip")).expect("write");
        let counter = Counter::default();
        let (codec, mut reader) = open_counted(&path, &counter).expect("opens");
        let mut text = Vec::new();
        reader.read_to_end(&mut text).expect("reads");
        assert_eq!((codec, text.len()), (Codec::Gzip, 150_000));
        let stored = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(
            counter.read.load(std::sync::atomic::Ordering::Relaxed),
            stored
        );
    }
}
