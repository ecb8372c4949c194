use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use berth_fs::{HashingReader, ResultExt};
use berth_oci::Digest;

use crate::compression::{decoder, Compression};
use crate::error::{Error, Result};
use crate::unpack::{read_full, unpack_layer, LayerStats};

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
    /// The uncompressed tar, which `save` and `push` send as it was received;
    /// `None` when the compressed blob it came from is kept instead (`blob`),
    /// from which the same tar is made again when one is needed.
    pub tar: Option<PathBuf>,
    pub tar_size: u64,
    /// The unpacked tree, in overlay lower-layer form.
    pub dir: PathBuf,
    pub stats: LayerStats,
    /// The compressed blob kept for this layer (a pulled layer's, as the
    /// registry sent it), which the store records with the layer.
    pub blob: Option<KeptBlob>,
}

/// A compressed form of a layer, in a file the store is to keep.
#[derive(Debug, Clone)]
pub struct KeptBlob {
    /// Where it is now: a temporary name in the store's blob directory, or
    /// its final one there.
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Reads a (possibly compressed) layer in one pass: the input is hashed, the
/// decompressed stream is hashed (the diff ID), written to `staging/layer.tar` and
/// unpacked into `staging/diff`, so a layer is never held in memory nor read twice.
pub fn stage_layer<R: Read>(input: R, staging: &Path, what: &str) -> Result<StagedLayer> {
    stage(input, staging, what, true)
}

/// As [`stage_layer`], for a compressed blob the caller keeps: no tar copy
/// is written (the blob is a smaller copy of it), so a pull writes each byte
/// once. The caller fills in [`StagedLayer::blob`].
pub fn stage_compressed_layer<R: Read>(
    input: R,
    staging: &Path,
    what: &str,
) -> Result<StagedLayer> {
    stage(input, staging, what, false)
}

fn stage<R: Read>(input: R, staging: &Path, what: &str, keep_tar: bool) -> Result<StagedLayer> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let dir = staging.join("diff");
    fs::create_dir_all(&dir).at("cannot create", &dir)?;
    let tar_path = staging.join("layer.tar");
    let tee = if keep_tar {
        let f = File::create(&tar_path).at("cannot create", &tar_path)?;
        Some(BufWriter::with_capacity(1 << 20, f))
    } else {
        None
    };

    let mut input_hasher = HashingReader::new(input);
    let (compression, diff_hex, tar_size, stats, tar_file) = {
        let (compression, stats, tee, diff_hex, tar_size) =
            unpack_in_pipeline(&mut input_hasher, tee, &dir, what)?;
        if stats.entries == 0 && tar_size < TAR_END_LEN {
            return Err(bad(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no tar entries",
            )));
        }
        let tar_file = tee
            .map(|t| t.into_inner().map_err(|e| e.into_error()))
            .transpose()
            .at("cannot write", &tar_path)?;
        (compression, diff_hex, tar_size, stats, tar_file)
    };
    if let Some(f) = &tar_file {
        f.sync_all().at("cannot sync", &tar_path)?;
    }
    let (_, input_hex, _) = input_hasher.finish().map_err(bad)?;
    Ok(StagedLayer {
        diff_id: Digest::from_sha256_hex(&diff_hex).expect("sha256 hex"),
        input_digest: Digest::from_sha256_hex(&input_hex).expect("sha256 hex"),
        input_compression: compression,
        tar: tar_file.map(|_| tar_path),
        tar_size,
        dir,
        stats,
        blob: None,
    })
}

/// Chunks in flight between two threads of the pipeline: a bound on memory
/// (CHUNK each), enough to keep both busy.
const CHUNKS_IN_FLIGHT: usize = 8;
const CHUNK: usize = 1 << 20;

/// What [`unpack_in_pipeline`] returns: the input's compression, the
/// unpacking's stats, the tee, the diff ID's hex and the tar's size.
type Unpacked<W> = (Compression, LayerStats, Option<W>, String, u64);

/// Unpacks a layer on three threads joined by bounded queues: this one reads
/// the input (a download: the socket, the input digest, the kept copy), a
/// second decompresses it, a third hashes the tar (the diff ID), copies it to
/// `tee` (if any) and unpacks it into `dir`. Decompression, the longest part,
/// then has a core to itself. Buffers go back to their sender once used, so
/// none is allocated (and zeroed) per chunk.
fn unpack_in_pipeline<W: io::Write + Send>(
    input: &mut dyn Read,
    tee: Option<W>,
    dir: &Path,
    what: &str,
) -> Result<Unpacked<W>> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let (compressed, compressed_rx) = Queue::new();
    let (tar, tar_rx) = Queue::new();
    std::thread::scope(|scope| {
        let unpacker = scope.spawn(move || {
            let mut hashed = HashingReader::with_tee(tar_rx, OptionalSink(tee));
            let stats = unpack_layer(&mut hashed, dir, what)?;
            // What tar left unread (its padding) counts for the digest.
            let (tee, hex, size) = hashed.finish().map_err(bad)?;
            Ok::<_, Error>((stats, tee.0, hex, size))
        });
        let decompressor = scope.spawn(move || {
            let (compression, mut decoded) = decoder(compressed_rx, what)?;
            match tar.fill_from(&mut decoded) {
                Some(e) => Err(bad(e)),
                None => Ok(compression),
            }
        });
        let read_error = compressed.fill_from(input);
        let decompressed = decompressor
            .join()
            .expect("the decompressing thread panicked");
        let unpacked = unpacker.join().expect("the unpacking thread panicked");
        // The first failure explains the others: a failed read a truncated
        // stream, a decompression error a tar that ends early.
        if let Some(source) = read_error {
            return Err(bad(source));
        }
        let compression = decompressed?;
        let (stats, tee, hex, size) = unpacked?;
        Ok((compression, stats, tee, hex, size))
    })
}

/// The sending end of a queue of chunks between two threads.
struct Queue {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    used: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Queue {
    fn new() -> (Self, ChunkReader) {
        let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (give_back, used) = std::sync::mpsc::channel();
        (Self { tx, used }, ChunkReader::new(rx, give_back))
    }

    /// Sends all of `reader` in chunks, then closes the queue (by being
    /// consumed). Returns the read error that stopped it, if one did; a
    /// receiver that hung up stops it too, and has its own error to tell.
    fn fill_from(self, reader: &mut dyn Read) -> Option<io::Error> {
        loop {
            let mut chunk = self.used.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
            chunk.resize(CHUNK, 0);
            let (n, error) = read_full(reader, &mut chunk);
            if n > 0 {
                chunk.truncate(n);
                if self.tx.send(chunk).is_err() {
                    return None;
                }
            }
            if error.is_some() || n == 0 {
                return error;
            }
        }
    }
}

/// A tee that may be absent.
struct OptionalSink<W>(Option<W>);

impl<W: io::Write> io::Write for OptionalSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// The receiving end of a [`Queue`] as a reader; used chunks go back to the
/// sender.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    give_back: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(
        rx: std::sync::mpsc::Receiver<Vec<u8>>,
        give_back: std::sync::mpsc::Sender<Vec<u8>>,
    ) -> Self {
        Self {
            rx,
            give_back,
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
                    let used = std::mem::replace(&mut self.chunk, c);
                    if used.capacity() > 0 {
                        let _ = self.give_back.send(used);
                    }
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
        tar: Some(tar_path),
        tar_size,
        dir: upper.to_path_buf(),
        stats,
        blob: None,
    })
}
