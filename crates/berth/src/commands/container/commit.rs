//! `commit`: a container's changes become a new image layer.
//!
//! The upper dir is written as a layer tar (whiteouts and opaque directories
//! in OCI form) and read straight back through `stage_layer`, which hashes it
//! (the diff ID) and unpacks it as the new layer's tree, in one pass through a
//! pipe. The image config is the parent's, with the container's settings and
//! `--change` applied, one history entry longer, as Docker's
//! `image.NewChildImage` makes it.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use berth_image::changes::apply_change;
use berth_image::diff::{self, write_layer, TreeWriter};
use berth_image::stage_layer;
use berth_oci::{History, ImageConfig, Reference};
use berth_runtime::rootfs::RootPaths;
use berth_runtime::ContainerConfig;
use berth_store::{ContainerStatus, NewImage};

use super::files::{image_layers, Stubs};
use super::{find, Context};
use crate::cli::CommitArgs;
use crate::commands::import::creation_time;
use crate::commands::rfc3339_nano;
use crate::error::CliError;
use crate::output;

/// The diff ID of a layer with no entries (1024 zero bytes). Docker records
/// such a commit as an empty layer rather than a layer of nothing.
const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

pub fn run(ctx: &Context, a: CommitArgs) -> Result<(), CliError> {
    // Everything that can be checked before the container is touched is.
    let name = a
        .reference
        .as_deref()
        .map(Reference::parse_normalized)
        .transpose()?;
    if name.as_ref().is_some_and(|n| n.digest().is_some()) {
        return Err(CliError::new(
            "refusing to create a tag with a digest reference",
        ));
    }
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    let config: ContainerConfig = serde_json::from_str(&c.config).map_err(|e| {
        CliError::new(format!(
            "container {} has an unreadable config: {e}",
            c.name
        ))
    })?;
    let parent_img = store.resolve_image(&c.image_id)?;
    let parent = ImageConfig::from_slice(&store.image_config(&parent_img.id)?)
        .map_err(|e| CliError::new(format!("image {}: bad config: {e}", parent_img.id.short())))?;
    let mut cc = parent.container_config();
    apply_container_config(&mut cc, &config);
    for change in &a.change {
        apply_change(&mut cc, change)?;
    }

    let lowers = image_layers(&store, &c)?;
    let upper = RootPaths::new(&store.layout().container(&c.id)).upper;
    let staging = store.stage()?;
    let staged = {
        // Docker pauses the container so the layer is one instant of it.
        let _frozen = (a.pause && c.status == ContainerStatus::Running)
            .then(|| Freeze::new(&store.layout().container(&c.id), &c.id));
        // The layer holds what `diff` lists: a directory that is in the upper
        // dir only because the runtime made mount points in it stays out, as
        // it would be in Docker's init layer.
        let stubs = Stubs::new(&upper, &lowers);
        let changes = diff::changes(&upper, &lowers, &|p, m| stubs.is_stub(p, m))
            .map_err(|e| CliError::new(e.to_string()))?;
        let mut on_change_path: HashSet<PathBuf> = HashSet::new();
        for change in changes {
            let rel = change.path.strip_prefix("/").expect("absolute");
            on_change_path.extend(rel.ancestors().map(Path::to_path_buf));
        }
        let (reader, writer) = rustix::pipe::pipe().map_err(std::io::Error::from)?;
        let upper_dir = upper.clone();
        let lowers_for_writer = lowers.clone();
        let writer: JoinHandle<Result<(), diff::Error>> = std::thread::spawn(move || {
            let stubs = Stubs::new(&upper_dir, &lowers_for_writer);
            let keep = |p: &Path, m: &std::fs::Metadata| {
                !stubs.is_stub(p, m) && (!m.is_dir() || on_change_path.contains(p))
            };
            let out = BufWriter::with_capacity(1 << 20, File::from(writer));
            let mut out = if upper_dir.exists() {
                write_layer(&upper_dir, out, &|p, m| !keep(p, m))?
            } else {
                // Never started: no changes, an archive of nothing.
                TreeWriter::new(out, true).finish()?
            };
            out.flush().map_err(diff::Error::Write)
        });
        let staged = stage_layer(
            File::from(reader),
            &staging.subdir("layer")?,
            &format!("the changes of container {}", c.name),
        );
        match (
            writer.join().expect("the layer writer does not panic"),
            staged,
        ) {
            // The reader stopped early; its error says why.
            (Err(diff::Error::Write(e)), Err(staged))
                if e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                return Err(staged.into())
            }
            (Err(e), _) => return Err(CliError::new(e.to_string())),
            (Ok(()), staged) => staged?,
        }
    };

    let now = rfc3339_nano(creation_time()?);
    let empty = staged.diff_id.as_str() == EMPTY_LAYER_DIFF_ID;
    let mut image = parent.clone();
    image.created = Some(now.clone());
    image.author = a.author.clone();
    image.comment = a.message.clone();
    image.config = Some(cc);
    // Docker's record of the container a layer came from, and of the engine
    // that made it; berth's layer is described by the history entry instead.
    image.docker_version = None;
    image.extra.remove("container");
    image.extra.remove("container_config");
    image.history.push(History {
        created: Some(now),
        author: a.author.clone(),
        created_by: Some(config.cmd.clone().unwrap_or_default().join(" ")),
        comment: a.message.clone(),
        empty_layer: empty,
    });
    let mut layers: Vec<Option<berth_image::StagedLayer>> =
        parent.rootfs.diff_ids.iter().map(|_| None).collect();
    if !empty {
        image.rootfs.diff_ids.push(staged.diff_id.clone());
        layers.push(Some(staged));
    }
    let outcome = store.commit_image(NewImage {
        config: image.to_bytes(),
        layers,
        names: name.into_iter().collect(),
    })?;
    drop(staging);
    writeln!(output::stdout(), "{}", outcome.id)?;
    Ok(())
}

/// What the container was run with replaces the image's defaults, as
/// Docker's commit starts from the container's Config.
fn apply_container_config(cc: &mut berth_oci::ContainerConfig, c: &ContainerConfig) {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    cc.cmd = c.cmd.clone();
    cc.entrypoint = c.entrypoint.clone();
    cc.env = (!c.env.is_empty()).then(|| c.env.clone());
    cc.working_dir = non_empty(&c.working_dir);
    cc.user = non_empty(&c.user);
    cc.labels = (!c.labels.is_empty()).then(|| c.labels.clone());
    cc.exposed_ports = (!c.exposed_ports.is_empty()).then(|| c.exposed_ports.clone());
    cc.volumes = (!c.volumes.is_empty()).then(|| c.volumes.clone());
    cc.stop_signal = c.stop_signal.clone();
}

/// Freezes a container's processes while it lives, with the runtime's
/// freezer as `pause` uses it. Best effort, as the layer is still correct if a
/// process writes meanwhile, only not one instant: a container whose runtime
/// state cannot be loaded is committed unpaused.
struct Freeze {
    container: Option<libcontainer::container::Container>,
}

impl Freeze {
    fn new(container_dir: &Path, id: &str) -> Self {
        let container =
            libcontainer::container::Container::load(container_dir.join("runtime").join(id))
                .ok()
                .and_then(|mut c| c.pause().ok().map(|()| c));
        Self { container }
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        if let Some(c) = &mut self.container {
            let _ = c.resume();
        }
    }
}
