use std::io::{BufRead, BufReader, Read};

use crate::error::{Error, Result};

/// How a tar stream is compressed, told from its first bytes (as Docker does,
/// never from a file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/// Wraps `input` in the decompressor its magic bytes call for. `what` names the
/// input in errors.
pub fn decompress<'a, R: Read + 'a>(
    input: R,
    what: &str,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let (c, d) = decoder(input, what)?;
    Ok((c, Box::new(d)))
}

/// A decompressor of one of the kinds berth reads; `Send` when its input is.
pub enum Decoder<R: Read> {
    None(BufReader<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<R>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::None(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
        }
    }
}

/// [`decompress`] without the box, for callers that need the decompressor
/// to move between threads.
pub fn decoder<R: Read>(input: R, what: &str) -> Result<(Compression, Decoder<R>)> {
    let mut buf = BufReader::with_capacity(256 * 1024, input);
    let head = buf.fill_buf().map_err(|source| Error::BadTar {
        what: what.to_string(),
        source,
    })?;
    let head = head.to_vec();
    if head.starts_with(GZIP_MAGIC) {
        Ok((
            Compression::Gzip,
            Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(buf))),
        ))
    } else if head.starts_with(ZSTD_MAGIC) {
        let d = zstd::stream::read::Decoder::with_buffer(buf).map_err(|source| Error::BadTar {
            what: what.to_string(),
            source,
        })?;
        Ok((Compression::Zstd, Decoder::Zstd(d)))
    } else if head.starts_with(BZIP2_MAGIC) {
        Err(Error::UnsupportedCompression(what.to_string(), "bzip2"))
    } else if head.starts_with(XZ_MAGIC) {
        Err(Error::UnsupportedCompression(what.to_string(), "xz"))
    } else {
        Ok((Compression::None, Decoder::None(buf)))
    }
}
