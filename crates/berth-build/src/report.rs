//! The image half of the post-build report (DESIGN.md §4.7): what the
//! finished image weighs against a budget, the bytes later layers hide but
//! cannot remove, who it runs as, and credential-like files in any layer
//! (deleting a secret in a later layer leaves it in the earlier one).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_context::Concern;
use berth_oci::{Digest, ImageConfig};
use berth_store::Store;

use crate::error::Result;

/// Below this, hidden bytes are an edited config file, not a problem.
const WASTE_WORTH_A_WARNING: u64 = 1_000_000;

/// The course's rule of thumb for an image's size.
pub const DEFAULT_BUDGET: u64 = 500 * 1000 * 1000;

#[derive(Debug, Clone)]
pub struct ImageReport {
    pub size: u64,
    pub budget: u64,
    /// Bytes of files that a later layer deleted or replaced, made by this
    /// build's own steps.
    pub wasted: u64,
    /// The largest of them: path and size.
    pub wasted_top: Vec<(String, u64)>,
    /// The same for files of the base image that the build deleted or
    /// replaced: shipped all the same, but only a different base avoids them.
    pub base_wasted: u64,
    pub base_wasted_top: Vec<(String, u64)>,
    /// `USER` of the image; empty is root.
    pub user: String,
    pub secrets: Vec<SecretFile>,
}

#[derive(Debug, Clone)]
pub struct SecretFile {
    /// 1-based layer index.
    pub layer: usize,
    pub path: String,
    pub rule: &'static str,
    pub summary: &'static str,
}

impl ImageReport {
    pub fn runs_as_root(&self) -> bool {
        let u = self.user.split(':').next().unwrap_or("");
        u.is_empty() || u == "root" || u == "0"
    }

    /// Findings that `--policy strict` refuses.
    pub fn errors(&self) -> Vec<String> {
        self.secrets
            .iter()
            .map(|s| {
                format!(
                    "layer {} has {} ({}): {}",
                    s.layer, s.path, s.rule, s.summary
                )
            })
            .collect()
    }

    /// Findings worth a note.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.size > self.budget {
            w.push(format!(
                "the image is {} , over the {} budget: start from a slim base and copy only the build output (multi-stage)",
                human(self.size),
                human(self.budget)
            ));
        }
        if self.wasted >= WASTE_WORTH_A_WARNING {
            w.push(format!(
                "{} in earlier layers is deleted or replaced by later ones and still shipped: {}; remove files in the step that creates them",
                human(self.wasted),
                listed(&self.wasted_top)
            ));
        }
        if self.base_wasted >= WASTE_WORTH_A_WARNING {
            w.push(format!(
                "{} of the base image is deleted or replaced by this build and still shipped: {}; a base image without those files avoids it",
                human(self.base_wasted),
                listed(&self.base_wasted_top)
            ));
        }
        if self.runs_as_root() {
            w.push("the image runs as root: add a user and a USER instruction".into());
        }
        w
    }
}

fn listed(top: &[(String, u64)]) -> String {
    top.iter()
        .map(|(p, s)| format!("{p} ({})", human(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Docker's size format (`docker images`): decimal units, 3 significant digits.
pub fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

/// Looks at the layers of an image that are in the store.
pub fn inspect(
    store: &Store,
    config: &ImageConfig,
    chain: &[Digest],
    base_layers: usize,
    budget: u64,
) -> Result<ImageReport> {
    let mut size = 0;
    // Every regular file still visible: path -> (layer, size).
    let mut live: BTreeMap<PathBuf, (usize, u64)> = BTreeMap::new();
    // Hidden bytes: path -> bytes from the base's layers and from the build's.
    let mut wasted: BTreeMap<PathBuf, Waste> = BTreeMap::new();
    let mut secrets = Vec::new();
    for (i, c) in chain.iter().enumerate() {
        let dir = store.layout().layer_diff(c);
        let mut entries = Vec::new();
        walk(&dir, Path::new(""), &mut |rel, meta| {
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                let gone: Vec<PathBuf> = under(&live, rel);
                for p in gone {
                    if let Some(origin) = live.remove(&p) {
                        *wasted.entry(p).or_default() += origin;
                    }
                }
                return;
            }
            if ft.is_dir() && berth_fs::xattr::is_overlay_opaque(&dir.join(rel)) {
                let gone: Vec<PathBuf> = under(&live, rel)
                    .into_iter()
                    .filter(|p| p != rel && live.get(p).is_some_and(|(l, _)| *l < i))
                    .collect();
                for p in gone {
                    if let Some(origin) = live.remove(&p) {
                        *wasted.entry(p).or_default() += origin;
                    }
                }
            }
            if ft.is_file() {
                size += meta.len();
                if let Some(origin) = live.insert(rel.to_path_buf(), (i, meta.len())) {
                    *wasted.entry(rel.to_path_buf()).or_default() += origin;
                }
            }
            entries.push(crate::copy::entry_of(rel, meta));
        })?;
        for f in berth_context::audit(&entries, None) {
            if f.rule.concern == Concern::Secret && f.files > 0 {
                secrets.push(SecretFile {
                    layer: i + 1,
                    path: format!("/{}", f.path.display()),
                    rule: f.rule.id,
                    summary: f.rule.summary,
                });
            }
        }
    }
    let (own, own_top) = largest(&wasted, base_layers, false);
    let (base, base_top) = largest(&wasted, base_layers, true);
    Ok(ImageReport {
        size,
        budget,
        wasted: own,
        wasted_top: own_top,
        base_wasted: base,
        base_wasted_top: base_top,
        user: config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default(),
        secrets,
    })
}

/// Bytes hidden at one path, by the layers that wrote them.
#[derive(Default)]
struct Waste(Vec<(usize, u64)>);

impl std::ops::AddAssign<(usize, u64)> for Waste {
    fn add_assign(&mut self, origin: (usize, u64)) {
        self.0.push(origin);
    }
}

/// The total and the three largest paths of the waste from the base's
/// layers (`from_base`) or from the build's own.
fn largest(
    wasted: &BTreeMap<PathBuf, Waste>,
    base_layers: usize,
    from_base: bool,
) -> (u64, Vec<(String, u64)>) {
    let mut top: Vec<(String, u64)> = wasted
        .iter()
        .map(|(p, w)| {
            let bytes =
                w.0.iter()
                    .filter(|(layer, _)| (*layer < base_layers) == from_base)
                    .map(|(_, s)| s)
                    .sum();
            (format!("/{}", p.display()), bytes)
        })
        .filter(|(_, b)| *b > 0)
        .collect();
    let total = top.iter().map(|(_, b)| b).sum();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(3);
    (total, top)
}

fn under(live: &BTreeMap<PathBuf, (usize, u64)>, rel: &Path) -> Vec<PathBuf> {
    live.range(rel.to_path_buf()..)
        .take_while(|(p, _)| p.starts_with(rel))
        .map(|(p, _)| p.clone())
        .collect()
}

fn walk(root: &Path, rel: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) -> Result<()> {
    let dir = root.join(rel);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let Ok(meta) = fs::symlink_metadata(root.join(&r)) else {
            continue;
        };
        f(&r, &meta);
        if meta.is_dir() {
            walk(root, &r, f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_234_567), "1.235MB");
        assert_eq!(human(500_000_000), "500MB");
    }
}
