//! Where a build's Dockerfile and context come from: a directory (with
//! `-f`), a Dockerfile on standard input with no context (`-`), or a tar
//! context on standard input (`- < ctx.tar`), as `docker build` takes them.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_store::Staging;

use crate::commands::Context;
use crate::error::CliError;

pub struct Input {
    pub context_dir: PathBuf,
    pub dockerfile_name: String,
    pub dockerfile: String,
    /// The Dockerfile's path, when it is a file.
    pub dockerfile_path: Option<PathBuf>,
    /// The `.dockerignore` in force, and its patterns.
    pub ignore_file: Option<PathBuf>,
    pub ignore_patterns: Vec<String>,
    /// A context that came on standard input lives here until the build ends.
    _staging: Option<Staging>,
}

impl Input {
    pub fn prepare(ctx: &Context, context: &str, file: Option<&str>) -> Result<Self, CliError> {
        if context.starts_with("http://")
            || context.starts_with("https://")
            || context.starts_with("git@")
            || context.starts_with("git://")
        {
            return Err(CliError::usage(format!(
                "unable to prepare context: {context}: remote contexts are not supported; clone or download it and build the directory"
            )));
        }
        if context == "-" {
            if file == Some("-") {
                return Err(CliError::usage(
                    "invalid argument: can't use stdin for both build context and dockerfile",
                ));
            }
            return Self::from_stdin(ctx, file);
        }
        let dir = PathBuf::from(context);
        if !dir.is_dir() {
            return Err(CliError::usage(format!(
                "unable to prepare context: path {context:?} not found"
            )));
        }
        let (name, text, path) = match file {
            Some("-") => {
                let mut s = String::new();
                io::stdin().read_to_string(&mut s).map_err(|e| {
                    CliError::usage(format!("cannot read the Dockerfile from stdin: {e}"))
                })?;
                ("Dockerfile".to_string(), s, None)
            }
            Some(f) => {
                let p = PathBuf::from(f);
                let text = read_dockerfile(&p)?;
                (display_name(&p), text, Some(p))
            }
            None => {
                let mut p = dir.join("Dockerfile");
                if !p.exists() && dir.join("dockerfile").exists() {
                    p = dir.join("dockerfile");
                }
                let text = read_dockerfile(&p)?;
                (display_name(&p), text, Some(p))
            }
        };
        let (ignore_file, ignore_patterns) = ignore_patterns(&dir, path.as_deref())?;
        Ok(Self {
            context_dir: dir,
            dockerfile_name: name,
            dockerfile: text,
            dockerfile_path: path,
            ignore_file,
            ignore_patterns,
            _staging: None,
        })
    }

    /// Standard input is a tar (plain or gzip) context, or a Dockerfile.
    fn from_stdin(ctx: &Context, file: Option<&str>) -> Result<Self, CliError> {
        let store = ctx.store()?;
        let staging = store.stage()?;
        let dir = staging.subdir("context")?;
        let mut stdin = io::stdin().lock();
        let mut head = Vec::with_capacity(512);
        (&mut stdin)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        let is_gzip = head.starts_with(&[0x1f, 0x8b]);
        let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        if is_gzip || is_tar {
            let reader = io::Cursor::new(head).chain(stdin);
            let reader: Box<dyn Read> = if is_gzip {
                Box::new(flate2::read::GzDecoder::new(reader))
            } else {
                Box::new(reader)
            };
            let mut ar = tar::Archive::new(reader);
            ar.set_preserve_permissions(true);
            ar.set_preserve_mtime(true);
            ar.unpack(&dir).map_err(|e| {
                CliError::usage(format!("cannot unpack the context from stdin: {e}"))
            })?;
            let name = file.unwrap_or("Dockerfile");
            let p = dir.join(name);
            let text = read_dockerfile(&p)?;
            let (ignore_file, ignore_patterns) = ignore_patterns(&dir, Some(&p))?;
            return Ok(Self {
                context_dir: dir,
                dockerfile_name: name.to_string(),
                dockerfile: text,
                dockerfile_path: Some(p),
                ignore_file,
                ignore_patterns,
                _staging: Some(staging),
            });
        }
        let mut rest = Vec::new();
        stdin
            .read_to_end(&mut rest)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        head.extend(rest);
        let text = String::from_utf8(head)
            .map_err(|_| CliError::usage("the Dockerfile on stdin is not UTF-8 text"))?;
        Ok(Self {
            context_dir: dir,
            dockerfile_name: "Dockerfile".into(),
            dockerfile: text,
            dockerfile_path: None,
            ignore_file: None,
            ignore_patterns: Vec::new(),
            _staging: Some(staging),
        })
    }
}

fn display_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn read_dockerfile(p: &Path) -> Result<String, CliError> {
    fs::read_to_string(p).map_err(|e| {
        CliError::usage(format!(
            "unable to prepare context: cannot read Dockerfile {}: {e}; name it with -f",
            p.display()
        ))
    })
}

/// The `.dockerignore` in force (`<Dockerfile>.dockerignore` first, as
/// BuildKit) and its patterns.
fn ignore_patterns(
    dir: &Path,
    dockerfile: Option<&Path>,
) -> Result<(Option<PathBuf>, Vec<String>), CliError> {
    match berth_context::find_ignore_file(dir, dockerfile) {
        Some(f) => {
            let patterns = berth_context::read_ignore_file(&f)
                .map_err(|e| CliError::usage(format!("{}: {e}", f.display())))?;
            Ok((Some(f), patterns))
        }
        None => Ok((None, Vec::new())),
    }
}
