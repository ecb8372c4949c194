//! `push`: per layer, the cheapest way to get the blob into the repository —
//! it is there already (`HEAD` on a digest berth knows for it), it can be
//! mounted from another repository of the registry berth knows holds it, or
//! it is uploaded (compressed once, in parallel, and the result kept) — then
//! the config and a Docker v2 schema 2 manifest, whose digest becomes a repo
//! digest of the image.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use berth_fs::{AtomicFile, HashingWriter};
use berth_image::LayerSource;
use berth_oci::{media_types, Digest, Reference};
use berth_store::{ImageRecord, LayerBlob, Store};
use ureq::http::{Method, StatusCode};

use crate::auth::{query_escape, Scope};
use crate::client::{self, Body, Client, Request};
use crate::error::{Error, Result};
use crate::gzip;
use crate::manifest::{docker_manifest, is_gzip_layer, Descriptor};
use crate::progress::{LayerEvent, Progress};
use crate::work::parallel;

/// Docker's default `max-concurrent-uploads` is 5; compression already uses
/// every core, so fewer layers at once keep memory and disk seeks down.
const CONCURRENT_UPLOADS: usize = 3;
/// Bytes per PATCH. Registries that store uploads in object storage want
/// parts of at least 5 MB; smaller layers go in one request.
const UPLOAD_CHUNK: u64 = 64 << 20;
/// Tries per blob upload; each starts a new upload session, because a
/// registry may keep part of a failed PATCH.
const UPLOAD_ATTEMPTS: u32 = 5;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest, as the registry now serves it.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: usize,
}

struct Candidate {
    digest: Digest,
    size: u64,
    /// Repositories of this registry known to hold it.
    sources: Vec<String>,
}

struct LayerPlan {
    diff_id: Digest,
    /// Where the tar comes from when it must be compressed; the store's
    /// error when it has no copy of it (only a registry may then still hold
    /// it, which is an error only if none does).
    source: berth_store::Result<LayerSource>,
    candidates: Vec<Candidate>,
}

struct LayerDone {
    descriptor: Descriptor,
}

/// Pushes `image` to `target` (which names a tag).
pub fn push(
    client: &Client,
    store: &mut Store,
    image: &ImageRecord,
    target: &Reference,
    progress: &dyn Progress,
) -> Result<Pushed> {
    let repo = target.path();
    let tag = target.tag().unwrap_or(berth_oci::DEFAULT_TAG);
    let scope = Scope::push(repo);
    let registry = client.registry();

    let mut plans = Vec::with_capacity(image.layers.len());
    for l in &image.layers {
        let mut candidates = Vec::new();
        for b in store.layer_blobs(&l.diff_id)? {
            if !is_gzip_layer(&b.media_type) {
                continue; // schema 2 carries gzip layers only
            }
            candidates.push(Candidate {
                sources: store.blob_sources(&b.digest, registry)?,
                digest: b.digest,
                size: b.size,
            });
        }
        plans.push(LayerPlan {
            diff_id: l.diff_id.clone(),
            source: store.layer_source(&l.diff_id),
            candidates,
        });
    }
    // Docker lists layers top first.
    for p in plans.iter().rev() {
        progress.layer(p.diff_id.short(), LayerEvent::Preparing);
    }
    let blobs_dir = store.layout().blobs_dir();
    let cancel = AtomicBool::new(false);
    let compressed = Mutex::new(Vec::new());
    let done = parallel(plans, CONCURRENT_UPLOADS, &cancel, |plan| {
        push_layer(
            client,
            repo,
            &scope,
            plan,
            &blobs_dir,
            &compressed,
            progress,
        )
    });
    // Blobs compressed for this push are remembered even when it failed, so
    // the next try uploads them as they are.
    for b in compressed.into_inner().expect("compressed lock") {
        store.record_layer_blob(&b)?;
    }
    let done = done?;
    for (d, l) in done.iter().zip(&image.layers) {
        store.record_layer_blob(&LayerBlob {
            diff_id: l.diff_id.clone(),
            digest: d.descriptor.digest.clone(),
            size: d.descriptor.size,
            media_type: media_types::DOCKER_LAYER_GZIP.into(),
        })?;
        store.record_blob_source(&d.descriptor.digest, registry, repo)?;
    }

    let config = store.image_config(&image.id)?;
    let config_desc = Descriptor {
        media_type: media_types::DOCKER_CONFIG.into(),
        size: config.len() as u64,
        digest: image.id.clone(),
        urls: Vec::new(),
        platform: None,
    };
    if client.blob_exists(repo, &image.id, &scope)?.is_none() {
        upload_bytes(client, repo, &scope, &config, &image.id)?;
    }

    let layers: Vec<Descriptor> = done.into_iter().map(|d| d.descriptor).collect();
    let manifest = docker_manifest(&config_desc, &layers);
    let digest = Digest::sha256_of(&manifest);
    let url = client.url(&format!("{repo}/manifests/{tag}"));
    let resp = client.send(
        Request::new(Method::PUT, url.clone(), &scope)
            .header("Content-Type", media_types::DOCKER_MANIFEST)
            .body(Body::Bytes(&manifest)),
    )?;
    if !resp.status().is_success() {
        return Err(client.unexpected("PUT", &url, resp));
    }
    if let Some(theirs) = client::header(&resp, "Docker-Content-Digest") {
        if theirs != digest.as_str() {
            return Err(Error::DigestMismatch {
                what: format!("manifest pushed to {}", target.familiar()),
                expected: digest,
                actual: theirs.parse().map_err(|_| Error::Http {
                    method: "PUT".into(),
                    url,
                    status: 201,
                    message: format!("invalid Docker-Content-Digest {theirs:?}"),
                })?,
            });
        }
    }
    client::drain(resp);
    store.add_repo_digest(&image.id, &target.with_digest(digest.clone()))?;
    Ok(Pushed {
        digest,
        size: manifest.len(),
    })
}

fn push_layer(
    client: &Client,
    repo: &str,
    scope: &Scope,
    plan: LayerPlan,
    blobs_dir: &Path,
    compressed: &Mutex<Vec<LayerBlob>>,
    progress: &dyn Progress,
) -> Result<LayerDone> {
    let id = plan.diff_id.short().to_string();
    let gzip_desc = |digest: &Digest, size: u64| Descriptor {
        media_type: media_types::DOCKER_LAYER_GZIP.into(),
        size,
        digest: digest.clone(),
        urls: Vec::new(),
        platform: None,
    };
    let finish = |descriptor: Descriptor, event| {
        progress.layer(&id, event);
        Ok(LayerDone { descriptor })
    };

    // 1. The repository already holds a form of this layer berth knows.
    for c in &plan.candidates {
        if client.blob_exists(repo, &c.digest, scope)?.is_some() {
            return finish(gzip_desc(&c.digest, c.size), LayerEvent::Exists);
        }
    }
    // 2. Another repository of this registry holds it: mount.
    let mut session: Option<String> = None;
    for c in &plan.candidates {
        for from in c.sources.iter().filter(|s| s.as_str() != repo) {
            match try_mount(client, repo, &c.digest, from)? {
                Mount::Mounted => {
                    if let Some(s) = session.take() {
                        cancel_upload(client, scope, &s);
                    }
                    return finish(
                        gzip_desc(&c.digest, c.size),
                        LayerEvent::Mounted { from: from.clone() },
                    );
                }
                Mount::Started(location) => {
                    if let Some(old) = session.replace(location) {
                        cancel_upload(client, scope, &old);
                    }
                }
                Mount::Refused => {}
            }
        }
    }
    // 3. Upload: the kept compressed blob, or a new one.
    let kept = plan.candidates.iter().find_map(|c| {
        let f = File::open(blobs_dir.join(c.digest.hex())).ok()?;
        (f.metadata().ok()?.len() == c.size).then(|| (f, c.digest.clone(), c.size))
    });
    let (file, digest, size) = match kept {
        Some(k) => k,
        None => {
            let source = plan.source?;
            progress.layer(&id, LayerEvent::Compressing);
            let (f, d, s) = compress_layer(&source, &plan.diff_id, blobs_dir)?;
            compressed.lock().expect("compressed lock").push(LayerBlob {
                diff_id: plan.diff_id.clone(),
                digest: d.clone(),
                size: s,
                media_type: media_types::DOCKER_LAYER_GZIP.into(),
            });
            // Compression is deterministic, so another berth (or this one,
            // before its records were lost) may have pushed these very bytes.
            if !plan.candidates.iter().any(|c| c.digest == d)
                && client.blob_exists(repo, &d, scope)?.is_some()
            {
                if let Some(s) = session.take() {
                    cancel_upload(client, scope, &s);
                }
                return finish(gzip_desc(&d, s), LayerEvent::Exists);
            }
            (f, d, s)
        }
    };
    let mut attempt = 0;
    loop {
        let result = upload_file(
            client,
            repo,
            scope,
            session.take(),
            &file,
            size,
            &digest,
            &|current| {
                progress.layer(
                    &id,
                    LayerEvent::Pushing {
                        current,
                        total: size,
                    },
                )
            },
        );
        match result {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt + 1 < UPLOAD_ATTEMPTS => {
                let seconds = 1u64 << attempt;
                progress.layer(&id, LayerEvent::Retrying { seconds });
                std::thread::sleep(Duration::from_secs(seconds));
                attempt += 1;
                // The failed attempt may have completed after all.
                if client.blob_exists(repo, &digest, scope)?.is_some() {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    finish(gzip_desc(&digest, size), LayerEvent::Pushed)
}

enum Mount {
    Mounted,
    /// The registry did not mount but opened an upload session instead.
    Started(String),
    /// Not allowed or not possible; upload instead.
    Refused,
}

fn try_mount(client: &Client, repo: &str, digest: &Digest, from: &str) -> Result<Mount> {
    let scope = Scope::push(repo).with_pull(from);
    let url = client.url(&format!(
        "{repo}/blobs/uploads/?mount={digest}&from={}",
        query_escape(from)
    ));
    let resp = match client.send(Request::new(Method::POST, url, &scope)) {
        Ok(r) => r,
        // No pull access to the source: not an error, just no mount.
        Err(Error::Unauthorized { .. } | Error::Denied { .. }) => return Ok(Mount::Refused),
        Err(e) => return Err(e),
    };
    let status = resp.status();
    let location = client::header(&resp, "Location");
    client::drain(resp);
    Ok(match (status, location) {
        (StatusCode::CREATED, _) => Mount::Mounted,
        (StatusCode::ACCEPTED, Some(l)) => Mount::Started(client.absolute(&l)),
        _ => Mount::Refused,
    })
}

/// Best effort: a session left open only costs the registry until it expires.
fn cancel_upload(client: &Client, scope: &Scope, location: &str) {
    if let Ok(r) = client.send(Request::new(Method::DELETE, location.to_string(), scope)) {
        client::drain(r);
    }
}

fn start_upload(client: &Client, repo: &str, scope: &Scope) -> Result<String> {
    let url = client.url(&format!("{repo}/blobs/uploads/"));
    let resp = client.send(Request::new(Method::POST, url.clone(), scope))?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(client.unexpected("POST", &url, resp));
    }
    let location = client::header(&resp, "Location").ok_or_else(|| Error::Http {
        method: "POST".into(),
        url: url.clone(),
        status: 202,
        message: "no Location for the upload".into(),
    })?;
    client::drain(resp);
    Ok(client.absolute(&location))
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={}", query_escape(digest.as_str()))
}

/// Uploads a file in PATCH chunks, then closes the upload with its digest.
#[allow(clippy::too_many_arguments)]
fn upload_file(
    client: &Client,
    repo: &str,
    scope: &Scope,
    session: Option<String>,
    file: &File,
    size: u64,
    digest: &Digest,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let mut location = match session {
        Some(s) => s,
        None => start_upload(client, repo, scope)?,
    };
    let mut offset = 0;
    while offset < size {
        let len = UPLOAD_CHUNK.min(size - offset);
        let base = offset;
        let chunk_progress = move |sent: u64| on_progress(base + sent);
        let resp = client.send(
            Request::new(Method::PATCH, location.clone(), scope)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", offset, offset + len - 1))
                .body(Body::File {
                    file,
                    offset,
                    len,
                    progress: Some(&chunk_progress),
                })
                .not_idempotent(),
        )?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(client.unexpected("PATCH", &location, resp));
        }
        let next = client::header(&resp, "Location");
        client::drain(resp);
        if let Some(n) = next {
            location = client.absolute(&n);
        }
        offset += len;
    }
    let url = with_digest(&location, digest);
    let resp = client.send(Request::new(Method::PUT, url.clone(), scope).not_idempotent())?;
    if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
        return Err(client.unexpected("PUT", &url, resp));
    }
    client::drain(resp);
    Ok(())
}

/// A small blob (the config) in one request: POST for a session, PUT with the
/// body and its digest.
fn upload_bytes(
    client: &Client,
    repo: &str,
    scope: &Scope,
    bytes: &[u8],
    digest: &Digest,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        let result = (|| {
            let location = start_upload(client, repo, scope)?;
            let url = with_digest(&location, digest);
            let resp = client.send(
                Request::new(Method::PUT, url.clone(), scope)
                    .header("Content-Type", "application/octet-stream")
                    .body(Body::Bytes(bytes))
                    .not_idempotent(),
            )?;
            if !resp.status().is_success() {
                return Err(client.unexpected("PUT", &url, resp));
            }
            client::drain(resp);
            Ok(())
        })();
        match result {
            Err(e) if e.is_transient() && attempt + 1 < UPLOAD_ATTEMPTS => {
                std::thread::sleep(Duration::from_secs(1 << attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Gzips a layer's tar into `blobs/` (kept for the next push), hashing as it
/// writes; returns an open handle to the result, its digest and size.
fn compress_layer(
    source: &LayerSource,
    diff_id: &Digest,
    blobs_dir: &Path,
) -> Result<(File, Digest, u64)> {
    let input = source.open(diff_id)?;
    let mut out = AtomicFile::new_in(blobs_dir)?;
    let reader = out.file_mut().try_clone().map_err(|e| berth_fs::Error {
        op: "cannot reopen",
        path: blobs_dir.to_path_buf(),
        source: e,
    })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let write_err = |e: std::io::Error| Error::Transfer {
        what: format!("compressing layer {diff_id}"),
        source: e,
    };
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, &mut out));
    let hashing =
        gzip::compress(input, hashing, gzip::DEFAULT_LEVEL, threads).map_err(write_err)?;
    let (mut buffered, hex, size) = hashing.finish();
    buffered.flush().map_err(write_err)?;
    drop(buffered);
    let digest = Digest::from_sha256_hex(&hex).expect("sha256 hex");
    out.commit(&blobs_dir.join(digest.hex()))?;
    Ok((reader, digest, size))
}
