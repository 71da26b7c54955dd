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

/// Opens `path` and returns a buffered reader over its decompressed bytes.
pub fn open(path: &Path) -> Result<(Codec, Box<dyn BufRead + Send>)> {
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

/// Reads the whole decompressed content; used only for small context files.
pub fn read_to_end(path: &Path) -> Result<Vec<u8>> {
    let (_, mut reader) = open(path)?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}
