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
        let (compression, decompressed) = decompress(&mut input_hasher, what)?;
        let tee = BufWriter::with_capacity(1 << 20, tar_file);
        let mut diff_hasher = HashingReader::with_tee(decompressed, tee);
        let stats = unpack_layer(&mut diff_hasher, &dir, what)?;
        let (tee, diff_hex, tar_size) = diff_hasher.finish().map_err(bad)?;
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
