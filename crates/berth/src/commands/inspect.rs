//! `berth inspect` and `berth image inspect`: Docker-shaped JSON.

use std::io::Write;

use berth_oci::ImageConfig;
use berth_store::{ImageRecord, Store};
use serde_json::{json, Map, Value};

use super::Context;
use crate::cli::{ImageInspectArgs, InspectArgs};
use crate::error::{status, CliError};
use crate::output::{self, template::Template};

/// Docker's zero time, printed for an image that was never tagged.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn run(ctx: &Context, a: InspectArgs) -> Result<(), CliError> {
    let kind = match a.kind.as_deref() {
        None => Kind::Any,
        Some("image") => Kind::Image,
        Some("container") => Kind::Container,
        Some(k) => {
            return Err(CliError::usage(format!(
                "\"{k}\" is not a valid value for --type: use container or image"
            )))
        }
    };
    inspect(ctx, &a.objects, a.format.as_deref(), kind)
}

pub fn run_container(ctx: &Context, a: ImageInspectArgs) -> Result<(), CliError> {
    inspect(ctx, &a.images, a.format.as_deref(), Kind::Container)
}

/// What `inspect` looks for; Docker tries containers before images.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    Image,
    Container,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Any => "object",
            Kind::Image => "image",
            Kind::Container => "container",
        }
    }
}

pub fn run_image(ctx: &Context, a: ImageInspectArgs) -> Result<(), CliError> {
    inspect(ctx, &a.images, a.format.as_deref(), Kind::Image)
}

fn inspect(
    ctx: &Context,
    names: &[String],
    format: Option<&str>,
    kind: Kind,
) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        if kind != Kind::Image {
            match store.container(n) {
                Ok(c) => {
                    let c = super::container::settle(&mut store, c)?;
                    found.push(super::container::inspect::container_json(&store, &c));
                    continue;
                }
                Err(berth_store::Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if kind == Kind::Container {
            missing.push(n.clone());
            continue;
        }
        match store.resolve_image(n) {
            Ok(img) => found.push(image_json(&store, &img)?),
            Err(berth_store::Error::NoSuchImage(_)) => missing.push(n.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    print_inspect(found, &missing, format, kind.noun())
}

/// Prints what an inspect command found (Docker's JSON, or one template line
/// per object), then one error line per name it did not find (exit 1 if any).
pub fn print_inspect(
    found: Vec<Value>,
    missing: &[String],
    format: Option<&str>,
    noun: &str,
) -> Result<(), CliError> {
    let mut out = output::stdout();
    match format {
        None | Some("json") => writeln!(out, "{}", docker_json(&Value::Array(found)))?,
        Some(f) => {
            let tpl = Template::parse(f)?;
            for v in &found {
                writeln!(out, "{}", tpl.render(v)?)?;
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    out.flush()?;
    for m in missing {
        writeln!(std::io::stderr(), "Error: No such {noun}: {m}")?;
    }
    Err(CliError::exit(status::FAILURE))
}

/// JSON as Docker's inspect commands print it.
pub fn docker_json(v: &Value) -> String {
    indent_like_docker(&serde_json::to_string_pretty(v).expect("json"))
}

/// Docker indents inspect output with four spaces.
fn indent_like_docker(two_space: &str) -> String {
    two_space
        .lines()
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", " ".repeat(n * 2), &l[n..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn image_json(store: &Store, img: &ImageRecord) -> Result<Value, CliError> {
    let config = ImageConfig::from_slice(&store.image_config(&img.id)?)
        .map_err(|e| CliError::new(format!("image {}: bad config: {e}", img.id.short())))?;
    let cc = config.container_config();
    // Docker's container.Config field order, with its omitempty fields.
    let mut c = Map::new();
    c.insert("Hostname".into(), json!(""));
    c.insert("Domainname".into(), json!(""));
    c.insert("User".into(), json!(cc.user.clone().unwrap_or_default()));
    c.insert("AttachStdin".into(), json!(false));
    c.insert("AttachStdout".into(), json!(false));
    c.insert("AttachStderr".into(), json!(false));
    if let Some(p) = &cc.exposed_ports {
        c.insert("ExposedPorts".into(), json!(p));
    }
    c.insert("Tty".into(), json!(false));
    c.insert("OpenStdin".into(), json!(false));
    c.insert("StdinOnce".into(), json!(false));
    c.insert("Env".into(), json!(cc.env));
    c.insert("Cmd".into(), json!(cc.cmd));
    if let Some(h) = &cc.healthcheck {
        c.insert("Healthcheck".into(), h.clone());
    }
    if let Some(a) = cc.args_escaped.filter(|a| *a) {
        c.insert("ArgsEscaped".into(), json!(a));
    }
    c.insert("Image".into(), json!(""));
    c.insert("Volumes".into(), json!(cc.volumes));
    c.insert(
        "WorkingDir".into(),
        json!(cc.working_dir.clone().unwrap_or_default()),
    );
    c.insert("Entrypoint".into(), json!(cc.entrypoint));
    c.insert("OnBuild".into(), json!(cc.on_build));
    c.insert("Labels".into(), json!(cc.labels));
    if let Some(s) = &cc.stop_signal {
        c.insert("StopSignal".into(), json!(s));
    }
    if let Some(s) = &cc.shell {
        c.insert("Shell".into(), json!(s));
    }

    let lower: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|l| store.layout().layer_diff(&l.chain_id).display().to_string())
        .collect();
    let mut v = json!({
        "Id": img.id,
        "RepoTags": img.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
        "RepoDigests": img.digests.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.comment.clone().unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "DockerVersion": config.docker_version.clone().unwrap_or_default(),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": c,
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": img.size(),
        "GraphDriver": {
            "Data": { "LowerDir": lower.join(":") },
            "Name": "overlay",
        },
        "RootFS": {
            "Type": if config.rootfs.kind.is_empty() { "layers".to_string() } else { config.rootfs.kind.clone() },
            "Layers": config.rootfs.diff_ids,
        },
        "Metadata": {
            "LastTagTime": img.last_tag_time.clone().unwrap_or_else(|| ZERO_TIME.into()),
        },
    });
    if let Some(variant) = &config.variant {
        let obj = v.as_object_mut().expect("object");
        // Docker puts Variant right after Architecture; rebuild to keep the order.
        let mut ordered = Map::new();
        for (k, val) in std::mem::take(obj) {
            let is_arch = k == "Architecture";
            ordered.insert(k, val);
            if is_arch {
                ordered.insert("Variant".into(), json!(variant));
            }
        }
        *obj = ordered;
    }
    Ok(v)
}
