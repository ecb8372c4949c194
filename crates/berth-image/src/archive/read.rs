use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use berth_fs::ResultExt;
use berth_oci::{host_architecture, media_types, Digest, Reference};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::{INDEX_JSON, MANIFEST_JSON};
use crate::compression::decompress;
use crate::error::{Error, Result};

/// One image found in an archive; its files are inside the extraction directory.
#[derive(Debug)]
pub struct ArchiveImage {
    pub config: Vec<u8>,
    /// Layer files in order, compressed or not, with the digest their descriptor
    /// promises for the bytes as stored (OCI layouts only).
    pub layers: Vec<(PathBuf, Option<Digest>)>,
    pub names: Vec<Reference>,
}

/// Nested indexes deeper than this are refused (a loop or a hostile archive).
const MAX_INDEX_DEPTH: usize = 4;

/// Extracts the archive's regular files into `dir` (which must exist), refusing
/// entries that would land outside it. Symlinks (legacy `docker save` links
/// duplicate layers) become hard links to their in-archive targets.
pub fn extract_archive<R: Read>(input: R, dir: &Path, what: &str) -> Result<()> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let (_, input) = decompress(input, what)?;
    let mut archive = tar::Archive::new(input);
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut entries = 0usize;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        entries += 1;
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean(&path) else {
            return Err(Error::InvalidArchive(format!("unsafe path {path:?}")));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).at("cannot create", &target)?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).at("cannot create", p)?;
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&target)
                    .at("cannot create", &target)?;
                io::copy(&mut entry, &mut f).map_err(bad)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::InvalidArchive(format!("link {path:?} has no target")))?;
                let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                    rel.parent().unwrap_or(Path::new("")).join(link)
                } else {
                    link.into_owned()
                };
                let Some(resolved) = clean(&base) else {
                    return Err(Error::InvalidArchive(format!(
                        "link {path:?} points outside the archive"
                    )));
                };
                links.push((rel, resolved));
            }
            _ => {}
        }
    }
    if entries == 0 {
        return Err(bad(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty archive",
        )));
    }
    for (link, target) in links {
        let (src, dst) = (dir.join(&target), dir.join(&link));
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).at("cannot create", p)?;
        }
        fs::hard_link(&src, &dst).at("cannot link archive entry", &src)?;
    }
    Ok(())
}

/// Lexically cleans a relative archive path; `None` if it climbs out.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Reads the images of an extracted archive: `manifest.json` when present (every
/// docker-archive), otherwise the OCI layout's `index.json`.
pub fn read_extracted(dir: &Path) -> Result<Vec<ArchiveImage>> {
    let manifest_path = dir.join(MANIFEST_JSON);
    if manifest_path.is_file() {
        return read_docker_archive(dir, &manifest_path);
    }
    let index_path = dir.join(INDEX_JSON);
    if index_path.is_file() {
        return read_oci_layout(dir, &index_path);
    }
    Err(Error::InvalidArchive(
        "neither manifest.json (docker-archive) nor index.json (OCI layout) found; is this the output of `save`?".into(),
    ))
}

fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = clean(Path::new(rel))
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::InvalidArchive(format!("unsafe path {rel:?}")))?;
    let full = dir.join(p);
    if !full.is_file() {
        return Err(Error::InvalidArchive(format!(
            "{rel} is missing from the archive"
        )));
    }
    Ok(full)
}

fn read_docker_archive(dir: &Path, manifest_path: &Path) -> Result<Vec<ArchiveImage>> {
    let data = fs::read(manifest_path).at("cannot read", manifest_path)?;
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&data)
        .map_err(|e| Error::InvalidArchive(format!("manifest.json: {e}")))?;
    entries
        .into_iter()
        .map(|e| {
            let config_path = inside(dir, &e.config)?;
            let config = fs::read(&config_path).at("cannot read", &config_path)?;
            let layers = e
                .layers
                .iter()
                .map(|l| Ok((inside(dir, l)?, None)))
                .collect::<Result<Vec<_>>>()?;
            let names = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    Reference::parse_normalized(t)
                        .map_err(|err| Error::InvalidArchive(format!("RepoTags {t:?}: {err}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ArchiveImage {
                config,
                layers,
                names,
            })
        })
        .collect()
}

fn read_oci_layout(dir: &Path, index_path: &Path) -> Result<Vec<ArchiveImage>> {
    let index = ImageIndex::from_file(index_path)
        .map_err(|e| Error::InvalidArchive(format!("index.json: {e}")))?;
    // Several index entries (one per tag) may name the same manifest.
    let mut by_manifest: HashMap<String, usize> = HashMap::new();
    let mut images: Vec<ArchiveImage> = Vec::new();
    for desc in index.manifests() {
        let names = names_of(desc);
        let manifest_desc = resolve_platform(dir, desc, 0)?;
        let key = manifest_desc.digest().to_string();
        if let Some(&i) = by_manifest.get(&key) {
            images[i].names.extend(names);
            continue;
        }
        let manifest_path = blob(dir, &manifest_desc)?;
        let manifest = ImageManifest::from_file(&manifest_path)
            .map_err(|e| Error::InvalidArchive(format!("manifest {key}: {e}")))?;
        let config_path = blob(dir, manifest.config())?;
        let config = fs::read(&config_path).at("cannot read", &config_path)?;
        let layers = manifest
            .layers()
            .iter()
            .map(|l| {
                let d: Digest = l
                    .digest()
                    .to_string()
                    .parse()
                    .map_err(|e| Error::InvalidArchive(format!("layer digest: {e}")))?;
                Ok((blob(dir, l)?, Some(d)))
            })
            .collect::<Result<Vec<_>>>()?;
        by_manifest.insert(key, images.len());
        images.push(ArchiveImage {
            config,
            layers,
            names,
        });
    }
    Ok(images)
}

/// The names an index entry gives its image: containerd's full name, or a
/// `ref.name` that is itself a full reference (skopeo writes `busybox:latest`).
/// A bare tag (`latest`) names no repository, so the image loads untagged.
fn names_of(desc: &Descriptor) -> Vec<Reference> {
    let Some(a) = desc.annotations() else {
        return Vec::new();
    };
    if let Some(r) = a
        .get(media_types::ANNOTATION_IMAGE_NAME)
        .and_then(|n| Reference::parse_normalized(n).ok())
    {
        return vec![r];
    }
    a.get(media_types::ANNOTATION_REF_NAME)
        .filter(|n| n.contains([':', '/', '@']))
        .and_then(|n| Reference::parse_normalized(n).ok())
        .into_iter()
        .collect()
}

/// Follows nested indexes to the manifest for this machine's platform.
fn resolve_platform(dir: &Path, desc: &Descriptor, depth: usize) -> Result<Descriptor> {
    let mt = desc.media_type().to_string();
    if media_types::is_manifest(&mt) {
        return Ok(desc.clone());
    }
    if !media_types::is_index(&mt) || depth >= MAX_INDEX_DEPTH {
        return Err(Error::InvalidArchive(format!(
            "unsupported entry {} of type {mt}",
            desc.digest()
        )));
    }
    let index = ImageIndex::from_file(blob(dir, desc)?)
        .map_err(|e| Error::InvalidArchive(format!("index {}: {e}", desc.digest())))?;
    let arch = host_architecture();
    let pick = index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == arch
            })
        })
        .or_else(|| (index.manifests().len() == 1).then(|| &index.manifests()[0]))
        .ok_or_else(|| {
            Error::InvalidArchive(format!(
                "no image for linux/{arch} in index {}",
                desc.digest()
            ))
        })?;
    resolve_platform(dir, pick, depth + 1)
}

/// The path of a descriptor's blob, after checking its digest when it is small
/// metadata (layers are checked as they are read).
fn blob(dir: &Path, desc: &Descriptor) -> Result<PathBuf> {
    let digest = desc.digest().to_string();
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| Error::InvalidArchive(format!("bad digest {digest}")))?;
    let path = inside(dir, &format!("blobs/{algo}/{hex}"))?;
    let mt = desc.media_type().to_string();
    if media_types::is_manifest(&mt) || media_types::is_index(&mt) || desc.size() < (1 << 20) {
        let data = File::open(&path)
            .and_then(|mut f| {
                let mut v = Vec::new();
                f.read_to_end(&mut v).map(|_| v)
            })
            .at("cannot read", &path)?;
        if Digest::sha256_of(&data).as_str() != digest {
            return Err(Error::InvalidArchive(format!(
                "blob {digest} does not match its content; the archive is corrupt"
            )));
        }
    }
    Ok(path)
}
