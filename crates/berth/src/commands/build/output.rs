//! `--output`: the built image also as a docker-archive or OCI layout tar
//! (what `docker save` / `skopeo` read), or its root filesystem as a directory.

use std::path::PathBuf;

use berth_image::archive::ArchiveFormat;
use berth_oci::{Digest, Reference};

use crate::commands::Context;
use crate::error::CliError;

pub enum Output {
    Archive {
        format: ArchiveFormat,
        dest: PathBuf,
    },
    Local {
        dest: PathBuf,
    },
}

impl Output {
    /// `type=docker-archive|oci|local,dest=PATH`; `type=docker` is a
    /// docker-archive, and a bare path is `local`.
    pub fn parse(s: &str) -> Result<Self, CliError> {
        let mut kind = None;
        let mut dest = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                None if !part.is_empty() && kind.is_none() && dest.is_none() => {
                    kind = Some("local".into());
                    dest = Some(PathBuf::from(part));
                }
                _ => {
                    return Err(CliError::usage(format!(
                        "invalid --output {s:?}: use type=docker-archive|oci|local,dest=PATH"
                    )))
                }
            }
        }
        let dest = dest.ok_or_else(|| {
            CliError::usage(format!("invalid --output {s:?}: dest=PATH is required"))
        })?;
        match kind.as_deref() {
            Some("docker-archive" | "docker") => Ok(Self::Archive {
                format: ArchiveFormat::DockerArchive,
                dest,
            }),
            Some("oci") => Ok(Self::Archive {
                format: ArchiveFormat::OciLayout,
                dest,
            }),
            Some("local") => Ok(Self::Local { dest }),
            other => Err(CliError::usage(format!(
                "invalid --output type {:?}: use docker-archive, oci or local",
                other.unwrap_or("")
            ))),
        }
    }

    pub fn write(&self, ctx: &Context, id: &Digest, names: &[Reference]) -> Result<(), CliError> {
        let store = ctx.store()?;
        let img = store.resolve_image(id.as_str())?;
        match self {
            Self::Archive { format, dest } => {
                let export = store.export_image(&img, names.to_vec())?;
                crate::commands::save::write_archive_file(dest, &[export], *format)?;
            }
            Self::Local { dest } => {
                std::fs::create_dir_all(dest)
                    .map_err(|e| CliError::new(format!("create {}: {e}", dest.display())))?;
                if std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
                    return Err(CliError::new(format!(
                        "--output {}: the directory is not empty; give a new or empty one",
                        dest.display()
                    )));
                }
                let staging = store.stage()?;
                let lowers: Vec<PathBuf> = img
                    .layers
                    .iter()
                    .map(|l| store.layout().layer_diff(&l.chain_id))
                    .collect();
                let paths = berth_runtime::rootfs::RootPaths::new(staging.path());
                berth_runtime::rootfs::mount_rootfs(&lowers, &paths)
                    .map_err(|e| CliError::new(e.to_string()))?;
                let r = berth_runtime::volume::populate(&paths.merged, "/", dest);
                let _ = berth_runtime::rootfs::unmount_rootfs(&paths);
                r.map_err(|e| CliError::new(e.to_string()))?;
            }
        }
        Ok(())
    }
}
