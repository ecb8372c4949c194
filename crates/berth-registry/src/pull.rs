//! `pull`: manifest (an index resolved to one platform), config, then the
//! missing layers in parallel, each streamed once through digest check,
//! decompression, diff ID hash and unpacking ([`berth_image::stage_layer`]),
//! and finally one atomic [`Store::commit_image`]. A pull killed halfway
//! leaves no image; the compressed blobs it finished are kept (verified) in
//! `blobs/`, so running it again downloads only what is missing.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth_image::{stage_compressed_layer, stage_layer, KeptBlob, StagedLayer};
use berth_oci::{chain_id, media_types, Digest, ImageConfig, Reference};
use berth_store::{LayerBlob, Layout, NewImage, Store};
use ureq::http::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::{self, Client, Request};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Fetched, Platform, ACCEPT_MANIFESTS};
use crate::progress::{LayerEvent, Progress};
use crate::work::{parallel, Tee, Tracked};

/// Docker's default `max-concurrent-downloads`.
const CONCURRENT_DOWNLOADS: usize = 3;
/// Tries per layer when the connection drops mid-download.
const LAYER_ATTEMPTS: u32 = 5;

pub struct PullOptions {
    pub platform: Platform,
    /// `--platform` was given: a single-platform image of another platform is
    /// then an error, as in Docker.
    pub platform_explicit: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: Platform::host(),
            platform_explicit: false,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of the manifest (or index) the reference named: Docker's
    /// `Digest:` line and the repo digest recorded.
    pub digest: Digest,
    pub image_id: Digest,
    /// The name now points at an image it did not before ("Downloaded newer
    /// image" rather than "Image is up to date").
    pub updated: bool,
}

/// Pulls `reference` (tagged or by digest) into `store`.
pub fn pull(
    client: &Client,
    store: &mut Store,
    reference: &Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let repo = reference.path();
    let scope = Scope::pull(repo);
    let shown = reference.familiar();
    let wanted = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => berth_oci::DEFAULT_TAG.to_string(),
    };
    let (bytes, content_type) = fetch_manifest(client, repo, &wanted, &scope, reference)?;
    let top_digest = Digest::sha256_of(&bytes);
    if let Some(want) = reference.digest() {
        if *want != top_digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {shown}"),
                expected: want.clone(),
                actual: top_digest,
            });
        }
    }
    let (manifest, from_index) = match manifest::parse(&bytes, &content_type, &shown)? {
        Fetched::Image(m) => (m, false),
        Fetched::Index(index) => {
            let entry = opts.platform.select(&index)?;
            let (bytes, ct) =
                fetch_manifest(client, repo, entry.digest.as_str(), &scope, reference)?;
            let actual = Digest::sha256_of(&bytes);
            if actual != entry.digest {
                return Err(Error::DigestMismatch {
                    what: format!("{} manifest of {shown}", opts.platform),
                    expected: entry.digest.clone(),
                    actual,
                });
            }
            match manifest::parse(&bytes, &ct, &shown)? {
                Fetched::Image(m) => (m, true),
                Fetched::Index(_) => {
                    return Err(Error::BadManifest {
                        reference: shown,
                        reason: "an index entry for this platform is itself an index".into(),
                    })
                }
            }
        }
    };

    let config_bytes = fetch_small_blob(client, repo, &manifest.config, &scope, "image config")?;
    let config = ImageConfig::from_slice(&config_bytes).map_err(|e| Error::BadImage {
        reference: shown.clone(),
        reason: format!("invalid image config: {e}"),
    })?;
    if opts.platform_explicit
        && !from_index
        && !opts.platform.matches_config(
            &config.os,
            &config.architecture,
            config.variant.as_deref(),
        )
    {
        let mut actual = format!("{}/{}", config.os, config.architecture);
        if let Some(v) = &config.variant {
            actual = format!("{actual}/{v}");
        }
        return Err(Error::PlatformMismatch {
            reference: shown,
            wanted: opts.platform.to_string(),
            actual,
        });
    }
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::BadImage {
            reference: shown,
            reason: format!(
                "the manifest lists {} layers but the config {}",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let image_id = Digest::sha256_of(&config_bytes);
    let chain = chain_id(&diff_ids);

    // What the name pointed at before, to tell "newer" from "up to date".
    let name = match reference.digest() {
        Some(_) => reference.clone(),
        None => reference
            .with_tag(&wanted)
            .map_err(|e| Error::BadManifest {
                reference: shown.clone(),
                reason: e.to_string(),
            })?,
    };
    let before = store.resolve_image(&name.to_string()).ok().map(|i| i.id);
    let have_image = store.resolve_image(image_id.as_str()).is_ok();

    let staging = store.stage()?;
    let mut layers: Vec<Option<StagedLayer>> = Vec::with_capacity(manifest.layers.len());
    let mut jobs = Vec::new();
    for (i, desc) in manifest.layers.iter().enumerate() {
        layers.push(None);
        // Docker pulls nothing, and says nothing per layer, for an image it has.
        if have_image {
            continue;
        }
        let id = desc.digest.short().to_string();
        if store.has_layer(&chain[i])? {
            progress.layer(&id, LayerEvent::AlreadyExists);
        } else {
            progress.layer(&id, LayerEvent::Queued);
            jobs.push((i, desc.clone(), staging.subdir(&format!("layer-{i}"))?));
        }
    }
    let layout = store.layout().clone();
    let cancel = AtomicBool::new(false);
    let check_diff_id = |i: usize, desc: &Descriptor, s: &StagedLayer| {
        if s.diff_id == diff_ids[i] {
            return Ok(());
        }
        Err(Error::BadImage {
            reference: shown.clone(),
            reason: format!(
                "layer {} ({}) unpacks to {} but the config says {}",
                i + 1,
                desc.digest,
                s.diff_id,
                diff_ids[i]
            ),
        })
    };
    // A blob the manifest lists twice (old images repeat the empty layer)
    // is downloaded once; its other places are unpacked from that copy.
    let mut seen = std::collections::HashSet::new();
    let (firsts, repeats): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .partition(|(_, d, _)| seen.insert(d.digest.clone()));
    let staged = parallel(firsts, CONCURRENT_DOWNLOADS, &cancel, |(i, desc, dir)| {
        let s = fetch_layer(
            client, repo, &scope, &desc, &dir, &layout, &cancel, progress,
        )?;
        check_diff_id(i, &desc, &s)?;
        progress.layer(desc.digest.short(), LayerEvent::PullComplete);
        Ok((i, s))
    })?;
    for (i, s) in staged {
        layers[i] = Some(s);
    }
    for (i, desc, dir) in repeats {
        let first = layers
            .iter()
            .flatten()
            .find(|s| s.input_digest == desc.digest)
            .expect("a repeated blob has a first place");
        let (path, kept) = match (&first.blob, &first.tar) {
            (Some(b), _) => (b.path.clone(), Some(b.path.clone())),
            (None, Some(t)) => (t.clone(), None),
            (None, None) => unreachable!("a staged layer has a tar or a blob"),
        };
        let what = format!("layer {}", desc.digest);
        let f = File::open(&path).map_err(|e| Error::Transfer {
            what: what.clone(),
            source: e,
        })?;
        let s = stage_pulled(f, &dir, &desc, kept.as_deref(), &what)?;
        check_diff_id(i, &desc, &s)?;
        layers[i] = Some(s);
    }

    let names = if reference.digest().is_some() {
        Vec::new()
    } else {
        vec![name.clone()]
    };
    let outcome = store.commit_image(NewImage {
        config: config_bytes,
        layers,
        names,
    })?;
    drop(staging);
    store.add_repo_digest(&outcome.id, &reference.with_digest(top_digest.clone()))?;
    // What later pushes can reuse: each layer's blob and where it lives.
    for (desc, diff_id) in manifest.layers.iter().zip(&diff_ids) {
        store.record_layer_blob(&LayerBlob {
            diff_id: diff_id.clone(),
            digest: desc.digest.clone(),
            size: desc.size,
            media_type: desc.media_type.clone(),
        })?;
        store.record_blob_source(&desc.digest, client.registry(), repo)?;
    }
    Ok(Pulled {
        digest: top_digest,
        updated: before.as_ref() != Some(&outcome.id),
        image_id: outcome.id,
    })
}

/// GETs a manifest by tag or digest; returns its bytes and media type.
fn fetch_manifest(
    client: &Client,
    repo: &str,
    tag_or_digest: &str,
    scope: &Scope,
    reference: &Reference,
) -> Result<(Vec<u8>, String)> {
    client.retry(|| fetch_manifest_once(client, repo, tag_or_digest, scope, reference))
}

fn fetch_manifest_once(
    client: &Client,
    repo: &str,
    tag_or_digest: &str,
    scope: &Scope,
    reference: &Reference,
) -> Result<(Vec<u8>, String)> {
    let url = client.url(&format!("{repo}/manifests/{tag_or_digest}"));
    let resp = client
        .send(Request::new(Method::GET, url.clone(), scope).header("Accept", ACCEPT_MANIFESTS))?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        let body = client::read_small(resp).unwrap_or_default();
        let message = client::error_message(&body, status);
        return Err(match client::error_code(&body).as_deref() {
            Some("NAME_UNKNOWN") => Error::NameUnknown {
                repository: reference.repository(),
                message,
            },
            _ => Error::ManifestUnknown {
                reference: format!(
                    "{}{}{tag_or_digest}",
                    reference.familiar_repository(),
                    if tag_or_digest.starts_with("sha256:") {
                        '@'
                    } else {
                        ':'
                    }
                ),
                message,
            },
        });
    }
    if !status.is_success() {
        return Err(client.unexpected("GET", &url, resp));
    }
    let content_type = client::header(&resp, "Content-Type").unwrap_or_default();
    let bytes = client::read_small(resp).map_err(|e| Error::Transfer {
        what: format!("manifest of {}", reference.familiar()),
        source: e,
    })?;
    Ok((bytes, content_type))
}

/// GETs a small blob (a config) whole and verifies it.
fn fetch_small_blob(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    scope: &Scope,
    what: &str,
) -> Result<Vec<u8>> {
    client.retry(|| fetch_small_blob_once(client, repo, desc, scope, what))
}

fn fetch_small_blob_once(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    scope: &Scope,
    what: &str,
) -> Result<Vec<u8>> {
    let url = client.url(&format!("{repo}/blobs/{}", desc.digest));
    let resp = client.send(Request::new(Method::GET, url.clone(), scope))?;
    if !resp.status().is_success() {
        return Err(client.unexpected("GET", &url, resp));
    }
    let mut bytes = Vec::new();
    resp.into_body()
        .into_reader()
        .take(desc.size.min(client::MAX_SMALL_BODY) + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Transfer {
            what: format!("{what} {}", desc.digest),
            source: e,
        })?;
    check_blob(
        &format!("{what} {}", desc.digest),
        desc,
        bytes.len() as u64,
        &Digest::sha256_of(&bytes),
    )?;
    Ok(bytes)
}

fn check_blob(what: &str, desc: &Descriptor, size: u64, digest: &Digest) -> Result<()> {
    if size != desc.size {
        return Err(Error::SizeMismatch {
            what: what.to_string(),
            expected: desc.size,
            actual: size,
        });
    }
    if *digest != desc.digest {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: desc.digest.clone(),
            actual: digest.clone(),
        });
    }
    Ok(())
}

/// Resumes of one layer's body before the layer is fetched from the start.
const RESUMES: u32 = 5;

/// A layer's body that survives dropped connections: it asks again for the
/// bytes not read yet (`Range: bytes=N-`) and goes on feeding the digest
/// check, decompression and unpacking where they were. A registry that does
/// not answer 206 from that exact offset ends it, and the layer is fetched
/// again from the start, as before.
struct ResumingBody<'a> {
    client: &'a Client,
    url: String,
    scope: &'a Scope,
    body: Box<dyn Read + 'a>,
    offset: u64,
    total: u64,
    resumes: u32,
}

impl ResumingBody<'_> {
    fn reopen(&self) -> std::io::Result<Box<dyn Read + 'static>> {
        let req = Request::new(Method::GET, self.url.clone(), self.scope)
            .header("Range", format!("bytes={}-", self.offset));
        let resp = self
            .client
            .send(req)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if !resumes_at(&resp, self.offset) {
            return Err(std::io::Error::other(
                "the registry cannot resume the download (no range support)",
            ));
        }
        let rest = self.total - self.offset;
        Ok(Box::new(resp.into_body().into_reader().take(rest + 1)))
    }
}

impl Read for ResumingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let err = match self.body.read(buf) {
                Ok(0) if self.offset < self.total && !buf.is_empty() => std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed before the whole layer came",
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            if self.resumes >= RESUMES || self.offset >= self.total {
                return Err(err);
            }
            self.resumes += 1;
            std::thread::sleep(Duration::from_millis(100 * u64::from(self.resumes)));
            match self.reopen() {
                Ok(b) => self.body = b,
                Err(_) => return Err(err),
            }
        }
    }
}

/// One layer into `dir`, from a blob kept by an earlier pull or push if there
/// is one, else from the registry, with retries when the connection drops.
#[allow(clippy::too_many_arguments)]
fn fetch_layer(
    client: &Client,
    repo: &str,
    scope: &Scope,
    desc: &Descriptor,
    dir: &Path,
    layout: &Layout,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<StagedLayer> {
    let id = desc.digest.short();
    let what = format!("layer {}", desc.digest);
    let kept = layout.blob(&desc.digest);
    if let Ok(f) = File::open(&kept) {
        if f.metadata().is_ok_and(|m| m.len() == desc.size) {
            let staged = stage_pulled(f, &dir.join("kept"), desc, Some(&kept), &what)?;
            // Verified when it was kept; checked again since it was read anyway.
            if check_blob(&what, desc, desc.size, &staged.input_digest).is_ok() {
                progress.layer(id, LayerEvent::DownloadComplete);
                return Ok(staged);
            }
        }
    }
    let mut attempt = 0;
    loop {
        let sub = dir.join(format!("try-{attempt}"));
        match download_layer(client, repo, scope, desc, &sub, layout, cancel, progress) {
            Ok(s) => return Ok(s),
            Err(e)
                if e.is_transient()
                    && attempt + 1 < LAYER_ATTEMPTS
                    && !cancel.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                let _ = std::fs::remove_dir_all(&sub);
                let seconds = 1u64 << attempt;
                progress.layer(id, LayerEvent::Retrying { seconds });
                std::thread::sleep(Duration::from_secs(seconds));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn download_layer(
    client: &Client,
    repo: &str,
    scope: &Scope,
    desc: &Descriptor,
    dir: &Path,
    layout: &Layout,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<StagedLayer> {
    let id = desc.digest.short();
    let what = format!("layer {}", desc.digest);
    let url = client.url(&format!("{repo}/blobs/{}", desc.digest));
    // Keep the compressed blob for later pushes and for a pull that is run
    // again after an interruption; an uncompressed layer is kept anyway.
    let keep = desc.media_type != media_types::OCI_LAYER;
    let total = desc.size;
    // What an interrupted pull (this process's earlier try, or a killed
    // one) left of this blob: only the rest is asked for.
    let partial = if keep {
        Some(Partial::claim(layout, &desc.digest, total)?)
    } else {
        None
    };
    let mut have = partial.as_ref().map_or(0, |p| p.len);
    let (partial_path, mut writer) = match partial {
        Some(p) => (Some(p.path), Some(p.writer)),
        None => (None, None),
    };
    let keeping = |e: std::io::Error| Error::Transfer {
        what: format!("keeping {what}"),
        source: e,
    };
    let mut req = Request::new(Method::GET, url.clone(), scope);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = client.send(req)?;
    if have > 0 && !resumes_at(&resp, have) {
        // The registry sends the whole blob: start over.
        if let Some(w) = writer.as_mut() {
            w.flush()
                .and_then(|()| w.get_ref().set_len(0))
                .map_err(keeping)?;
        }
        have = 0;
    }
    if !resp.status().is_success() {
        return Err(client.unexpected("GET", &url, resp));
    }
    let on_progress = |current: u64| {
        progress.layer(id, LayerEvent::Downloading { current, total });
    };
    let network = ResumingBody {
        client,
        url: url.clone(),
        scope,
        body: Box::new(resp.into_body().into_reader().take(total - have + 1)),
        offset: have,
        total,
        resumes: 0,
    };
    let prefix: Box<dyn Read> = match &partial_path {
        Some(p) if have > 0 => Box::new(File::open(p).map_err(keeping)?.take(have)),
        _ => Box::new(std::io::empty()),
    };
    let source = prefix.chain(Tee {
        inner: network,
        out: writer.as_mut(),
    });
    let mut tracked = Tracked::new(source, cancel, &on_progress);
    let result = stage_pulled(&mut tracked, dir, desc, partial_path.as_deref(), &what);
    let staged = match result {
        // What came is kept for the next try (the writer flushes on drop).
        Err(e) if tracked.source_failed => {
            return Err(Error::Transfer {
                what,
                source: std::io::Error::other(e.to_string()),
            });
        }
        Err(e) => {
            // Unreadable content: if it is not what the manifest names, say
            // so (the registry sent something else) rather than blame tar.
            // The rest is read into the kept copy too, and that is checked.
            let drained = std::io::copy(&mut tracked, &mut std::io::sink());
            let (failed, count) = (tracked.source_failed, tracked.count);
            drop(tracked);
            if failed {
                return Err(Error::Transfer {
                    what,
                    source: std::io::Error::other(e.to_string()),
                });
            }
            if let (Some(path), Some(w)) = (&partial_path, writer) {
                if drained.is_ok() && finish(w).is_ok() {
                    let sum = berth_fs::sha256_hex_of_file(path);
                    let _ = std::fs::remove_file(path);
                    if let Ok((hex, _)) = sum {
                        let actual = Digest::from_sha256_hex(&hex).expect("sha256 hex");
                        check_blob(&what, desc, count, &actual)?;
                    }
                }
            }
            return Err(e);
        }
        Ok(s) => s,
    };
    let count = tracked.count;
    drop(tracked);
    if let Err(e) = check_blob(&what, desc, count, &staged.input_digest) {
        if let Some(path) = &partial_path {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    // The store moves the kept blob to its name as it records the layer;
    // until then its temporary name keeps it from garbage collection.
    if let Some(w) = writer {
        finish(w).map_err(keeping)?;
    }
    progress.layer(id, LayerEvent::DownloadComplete);
    Ok(staged)
}

/// Stages a pulled layer. A compressed one whose blob is kept (in the file
/// `kept_at`) keeps no uncompressed tar: the tar is made from the blob again
/// when `save` or a push in another form needs it, so a pull writes the
/// layer's bytes once besides its tree.
fn stage_pulled<R: Read>(
    input: R,
    dir: &Path,
    desc: &Descriptor,
    kept_at: Option<&Path>,
    what: &str,
) -> Result<StagedLayer> {
    let Some(path) = kept_at.filter(|_| desc.media_type != media_types::OCI_LAYER) else {
        return Ok(stage_layer(input, dir, what)?);
    };
    let mut staged = stage_compressed_layer(input, dir, what)?;
    staged.blob = Some(KeptBlob {
        path: path.to_path_buf(),
        digest: desc.digest.clone(),
        size: desc.size,
        media_type: desc.media_type.clone(),
    });
    Ok(staged)
}

/// Flushes and syncs a kept blob.
fn finish(mut w: BufWriter<File>) -> std::io::Result<()> {
    w.flush()?;
    w.get_ref().sync_all()
}

/// A 206 answer that starts at `offset`.
fn resumes_at(resp: &ureq::http::Response<ureq::Body>, offset: u64) -> bool {
    let start = client::header(resp, "content-range").and_then(|v| {
        v.strip_prefix("bytes ")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.trim().parse::<u64>().ok())
    });
    resp.status() == StatusCode::PARTIAL_CONTENT && start == Some(offset)
}

/// How much of a download may be lost with a killed pull: the partial file
/// is written in pieces this large.
const PARTIAL_BUFFER: usize = 256 * 1024;

/// The compressed blob being downloaded, under a temporary name of this
/// process (`.tmp-PID-partial-HEX` in blobs/): garbage collection leaves it
/// while this process lives, and a later pull takes over what a killed one
/// left. Only whole writes reach it, so it always holds a prefix of the blob;
/// the digest check at the end covers every byte.
struct Partial {
    path: std::path::PathBuf,
    writer: BufWriter<File>,
    /// Bytes already there when it was claimed.
    len: u64,
}

impl Partial {
    fn name(pid: u32, digest: &Digest) -> String {
        format!("{}{pid}-partial-{}", berth_fs::TEMP_PREFIX, digest.hex())
    }

    /// This process's partial file for `digest`, taking over one that a
    /// process no longer running left (or this one, on a retry).
    fn claim(layout: &Layout, digest: &Digest, total: u64) -> Result<Self> {
        let dir = layout.blobs_dir();
        let mine = dir.join(Self::name(std::process::id(), digest));
        let suffix = format!("-partial-{}", digest.hex());
        if !mine.exists() {
            let names = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for n in names.iter().filter(|n| n.ends_with(&suffix)) {
                let dead = berth_fs::temp_owner(n).is_some_and(|pid| !berth_fs::process_alive(pid));
                // A rename is atomic: of two pulls, one takes it over.
                if dead && std::fs::rename(dir.join(n), &mine).is_ok() {
                    break;
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mine)
            .map_err(|e| Error::Transfer {
                what: format!("keeping layer {digest}"),
                source: e,
            })?;
        let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len >= total {
            // Whole (or more) yet not a blob: not to be trusted.
            file.set_len(0).map_err(|e| Error::Transfer {
                what: format!("keeping layer {digest}"),
                source: e,
            })?;
            len = 0;
        }
        Ok(Self {
            path: mine,
            writer: BufWriter::with_capacity(PARTIAL_BUFFER, file),
            len,
        })
    }
}
