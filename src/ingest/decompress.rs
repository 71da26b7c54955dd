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
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (a pipe, device or socket)"),
        ));
    }
    let mut file =
        BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| Error::io(path, e))?);
    let head = file.fill_buf().map_err(|e| Error::io(path, e))?;
    let codec = if head.starts_with(&GZIP_MAGIC) {
        Codec::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Codec::Zstd
    } else {
        Codec::Plain
    };
    let reader: Box<dyn BufRead + Send> = match codec {
        Codec::Plain => Box::new(file),
        Codec::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(file),
        )),
        Codec::Zstd => {
            let dec = zstd::Decoder::with_buffer(file).map_err(|e| Error::io(path, e))?;
            Box::new(BufReader::with_capacity(1 << 20, dec))
        }
    };
    Ok((codec, reader))
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
