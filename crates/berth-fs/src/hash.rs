use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Result, ResultExt};

/// Passes writes through to `inner` while hashing them, so content is digested in
/// the same pass that stores it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Returns the inner writer, the lowercase hex sha256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            hex::encode(self.hasher.finalize()),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything read through it; optionally copies it to a sink as well
/// (the tee lets one read of a layer both unpack it and store its bytes).
pub struct HashingReader<R, W = io::Sink> {
    inner: R,
    tee: W,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> HashingReader<R, io::Sink> {
    pub fn new(inner: R) -> Self {
        Self::with_tee(inner, io::sink())
    }
}

impl<R: Read, W: Write> HashingReader<R, W> {
    pub fn with_tee(inner: R, tee: W) -> Self {
        Self {
            inner,
            tee,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// Reads whatever the consumer left unread (tar's trailing padding), so the
    /// digest covers the whole stream, then returns (tee, hex digest, byte count).
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.tee, hex::encode(self.hasher.finalize()), self.read))
    }
}

impl<R: Read, W: Write> Read for HashingReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.tee.write_all(&buf[..n])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The sha256 of a file's content, streamed.
pub fn sha256_hex_of_file(path: &Path) -> Result<(String, u64)> {
    let f = File::open(path).at("cannot open", path)?;
    HashingReader::new(f)
        .finish()
        .at("cannot read", path)
        .map(|(_, d, n)| (d, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_hashes_unread_tail() {
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        let (_, digest, n) = r.finish().unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
