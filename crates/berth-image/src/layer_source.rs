//! Reading a stored layer's tar back, from the tar itself or from the
//! compressed blob a pull kept in its place.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_fs::ResultExt;
use berth_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::compression::decoder;
use crate::error::Result;

/// Where a stored layer's uncompressed tar comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// The tar itself, as `blobs/sha256/<diff ID>`.
    Tar(PathBuf),
    /// A gzip or zstd blob of it (a pulled layer's). Decompressing it gives
    /// the tar the layer's diff ID names, which [`LayerSource::open`] checks.
    Compressed(PathBuf),
}

impl LayerSource {
    pub fn path(&self) -> &Path {
        match self {
            Self::Tar(p) | Self::Compressed(p) => p,
        }
    }

    /// The uncompressed tar of layer `diff_id`, streamed. From a compressed
    /// blob the stream ends in an error, not in silence, if what it gives is
    /// not that layer (a damaged store), so nothing built on it goes out.
    pub fn open(&self, diff_id: &Digest) -> Result<Box<dyn Read + Send>> {
        let f = File::open(self.path()).at("cannot open layer", self.path())?;
        match self {
            Self::Tar(_) => Ok(Box::new(f)),
            Self::Compressed(p) => {
                let what = format!("layer blob {}", p.display());
                let (_, tar) = decoder(f, &what)?;
                Ok(Box::new(Verified {
                    inner: tar,
                    hasher: Sha256::new(),
                    want: diff_id.clone(),
                    what,
                }))
            }
        }
    }
}

/// Hashes what passes and checks the digest at the end of the stream.
struct Verified<R> {
    inner: R,
    hasher: Sha256,
    want: Digest,
    what: String,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let hex = hex::encode(self.hasher.clone().finalize());
            if hex != self.want.hex() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} does not decompress to layer {} (sha256:{hex}): the store is damaged; remove the image and pull it again",
                        self.what, self.want
                    ),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn compressed_blob_reads_back_as_its_tar() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, gz(b"the tar")).unwrap();
        let mut out = Vec::new();
        LayerSource::Compressed(p)
            .open(&Digest::sha256_of(b"the tar"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"the tar");
    }

    #[test]
    fn compressed_blob_of_another_layer_fails_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, gz(b"something else")).unwrap();
        let err = LayerSource::Compressed(p)
            .open(&Digest::sha256_of(b"the tar"))
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("pull it again"), "{err}");
    }
}
