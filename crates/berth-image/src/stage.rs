use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use berth_fs::{HashingReader, ResultExt};
use berth_oci::Digest;

use crate::compression::{decompress, Compression};
use crate::error::{Error, Result};
use crate::unpack::{unpack_layer, LayerStats};

/// A tar archive ends with two zero blocks; anything shorter with no entries is
/// not a tar at all (an empty file, say).
const TAR_END_LEN: u64 = 1024;

/// A layer read into a staging directory, ready to be moved into the store.
#[derive(Debug)]
pub struct StagedLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the bytes as they were read (compressed or not).
    pub input_digest: Digest,
    pub input_compression: Compression,
    /// The uncompressed tar, which `save` and `push` send as it was received.
    pub tar: PathBuf,
    pub tar_size: u64,
    /// The unpacked tree, in overlay lower-layer form.
    pub dir: PathBuf,
    pub stats: LayerStats,
}

/// Reads a (possibly compressed) layer in one pass: the input is hashed, the
/// decompressed stream is hashed (the diff ID), written to `staging/layer.tar` and
/// unpacked into `staging/diff`, so a layer is never held in memory nor read twice.
pub fn stage_layer<R: Read>(input: R, staging: &Path, what: &str) -> Result<StagedLayer> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let dir = staging.join("diff");
    fs::create_dir_all(&dir).at("cannot create", &dir)?;
    let tar_path = staging.join("layer.tar");
    let tar_file = File::create(&tar_path).at("cannot create", &tar_path)?;

    let mut input_hasher = HashingReader::new(input);
    let (compression, diff_hex, tar_size, stats, tar_file) = {
        let (compression, mut decompressed) = decompress(&mut input_hasher, what)?;
        let tee = BufWriter::with_capacity(1 << 20, tar_file);
        let (stats, tee, diff_hex, tar_size) =
            unpack_alongside(&mut decompressed, tee, &dir, what)?;
        if stats.entries == 0 && tar_size < TAR_END_LEN {
            return Err(bad(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no tar entries",
            )));
        }
        let tar_file = tee
            .into_inner()
            .map_err(|e| e.into_error())
            .at("cannot write", &tar_path)?;
        (compression, diff_hex, tar_size, stats, tar_file)
    };
    tar_file.sync_all().at("cannot sync", &tar_path)?;
    let (_, input_hex, _) = input_hasher.finish().map_err(bad)?;
    Ok(StagedLayer {
        diff_id: Digest::from_sha256_hex(&diff_hex).expect("sha256 hex"),
        input_digest: Digest::from_sha256_hex(&input_hex).expect("sha256 hex"),
        input_compression: compression,
        tar: tar_path,
        tar_size,
        dir,
        stats,
    })
}

/// Chunks in flight between the reading and the unpacking thread: a bound
/// on memory (CHUNK each), enough to keep both busy.
const CHUNKS_IN_FLIGHT: usize = 8;
const CHUNK: usize = 1 << 20;

/// Reads the uncompressed layer on this thread (download, input digest,
/// decompression) while a second thread hashes it (the diff ID), writes the
/// tar copy to `tee` and unpacks it into `dir`: the two halves take about
/// the same time, so a pull takes about half as long on two cores.
/// Returns the unpacking's stats, the tee, the diff ID's hex and the size.
fn unpack_alongside(
    reader: &mut dyn Read,
    tee: BufWriter<File>,
    dir: &Path,
    what: &str,
) -> Result<(LayerStats, BufWriter<File>, String, u64)> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let unpacker = scope.spawn(move || {
            let mut hashed = HashingReader::with_tee(ChunkReader::new(rx), tee);
            let stats = unpack_layer(&mut hashed, dir, what)?;
            // What tar left unread (its padding) counts for the digest.
            let (tee, hex, size) = hashed.finish().map_err(bad)?;
            Ok::<_, Error>((stats, tee, hex, size))
        });
        let mut read_error = None;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.send(chunk).is_err() {
                        break; // the unpacking failed: its error says why
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let unpacked = unpacker.join().expect("the unpacking thread panicked");
        // A failed read explains a truncated archive better than tar does.
        match read_error {
            Some(source) => Err(bad(source)),
            None => unpacked,
        }
    })
}

/// The receiving end of [`unpack_alongside`] as a reader.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Stages an overlay upper dir that is already the layer's tree (a build
/// step's): its tar is written once to `staging/layer.tar`, hashed on the way
/// (the diff ID), and the directory itself becomes the layer, as Docker's
/// overlay2 driver keeps a container's upper dir. `clamp_mtime` caps the
/// modification times the tar records (`SOURCE_DATE_EPOCH`).
pub fn stage_upper(
    upper: &Path,
    staging: &Path,
    clamp_mtime: Option<u64>,
) -> std::result::Result<StagedLayer, crate::diff::Error> {
    use crate::diff::{skip_nothing, TreeWriter};
    let tar_path = staging.join("layer.tar");
    let file = File::create(&tar_path).at("cannot create", &tar_path)?;
    let out = berth_fs::HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut w = TreeWriter::new(out, true).clamp_mtime(clamp_mtime);
    w.append(upper, Path::new(""), &skip_nothing)?;
    let stats = w.stats();
    let (buffered, hex, tar_size) = w.finish()?.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| crate::diff::Error::Write(e.into_error()))?;
    file.sync_all().at("cannot sync", &tar_path)?;
    let diff_id = Digest::from_sha256_hex(&hex).expect("sha256 hex");
    Ok(StagedLayer {
        input_digest: diff_id.clone(),
        diff_id,
        input_compression: Compression::None,
        tar: tar_path,
        tar_size,
        dir: upper.to_path_buf(),
        stats,
    })
}
