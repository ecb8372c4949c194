//! `berth import`: a root filesystem tarball becomes a one-layer image.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};

use berth_image::changes::apply_change;
use berth_image::stage_layer;
use berth_oci::{host_architecture, ContainerConfig, History, ImageConfig, Reference, RootFs};
use berth_store::NewImage;

use super::{rfc3339_nano, Context};
use crate::cli::ImportArgs;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, a: ImportArgs) -> Result<(), CliError> {
    // Everything that can be checked before reading a possibly large input is.
    let name = a
        .reference
        .as_deref()
        .map(Reference::parse_normalized)
        .transpose()?;
    let mut cc = ContainerConfig::default();
    for change in &a.change {
        apply_change(&mut cc, change)?;
    }
    let (os, architecture, variant) = platform(a.platform.as_deref())?;
    if a.source.starts_with("http://") || a.source.starts_with("https://") {
        return Err(CliError::new(format!(
            "importing from a URL is not supported: download it first, e.g. curl -fsSL {} | berth import - NAME",
            a.source
        )));
    }
    let (input, src): (Box<dyn Read>, &str) = if a.source == "-" {
        if io::stdin().is_terminal() {
            return Err(CliError::new(
                "import from STDIN needs a tarball piped in: berth import - NAME < rootfs.tar",
            ));
        }
        (Box::new(io::stdin().lock()), "-")
    } else {
        let f =
            File::open(&a.source).map_err(|e| CliError::new(format!("open {}: {e}", a.source)))?;
        // docker's CLI streams a file as "-" too, so history says the same.
        (Box::new(f), "-")
    };

    let mut store = ctx.store()?;
    let staging = store.stage()?;
    let layer = stage_layer(input, &staging.subdir("layer")?, &a.source)?;
    let now = rfc3339_nano(creation_time()?);
    let comment = a
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {src}"));
    let config = ImageConfig {
        architecture,
        os,
        variant,
        created: Some(now.clone()),
        comment: Some(comment.clone()),
        config: Some(cc),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(now),
            comment: Some(comment),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let outcome = store.commit_image(NewImage {
        config: config.to_bytes(),
        layers: vec![Some(layer)],
        names: name.into_iter().collect(),
    })?;
    writeln!(output::stdout(), "{}", outcome.id)?;
    Ok(())
}

/// Now, or `SOURCE_DATE_EPOCH` when set, so that importing the same tarball
/// with the same options gives the same image ID (reproducible builds).
pub fn creation_time() -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .parse::<i64>()
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970; unset it or fix it"
                ))
            }),
        _ => Ok(chrono::Utc::now()),
    }
}

/// `--platform os/arch[/variant]`; berth runs Linux images only.
fn platform(p: Option<&str>) -> Result<(String, String, Option<String>), CliError> {
    let Some(p) = p else {
        return Ok(("linux".into(), host_architecture().into(), None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        ["linux", arch] => Ok(("linux".into(), arch.to_string(), None)),
        ["linux", arch, variant] => {
            Ok(("linux".into(), arch.to_string(), Some(variant.to_string())))
        }
        _ => Err(CliError::usage(format!(
            "invalid platform {p:?}: expected linux/ARCH[/VARIANT], e.g. linux/{}",
            host_architecture()
        ))),
    }
}
