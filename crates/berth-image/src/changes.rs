//! `--change` instructions of `import` (and later `commit`): the Dockerfile
//! instructions that only edit the image config, applied as Docker applies them.
//!
//! Each change is a single instruction line, so this reads its words directly;
//! the full Dockerfile frontend lives in `berth-dockerfile`.

use std::collections::BTreeMap;

use berth_oci::ContainerConfig;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The instructions `docker import --change` accepts.
const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<()> {
    let err = |why: &str| Error::Change(change.to_string(), why.to_string());
    let line = change.trim();
    let (instr, rest) = line
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a, b.trim()))
        .unwrap_or((line, ""));
    let instr = instr.to_ascii_uppercase();
    if !ALLOWED.contains(&instr.as_str()) {
        return Err(err(&format!(
            "{instr} is not a valid change command; use one of {}",
            ALLOWED.join(", ")
        )));
    }
    if rest.is_empty() {
        return Err(err(&format!("{instr} requires at least one argument")));
    }
    match instr.as_str() {
        "CMD" => config.cmd = Some(command_form(rest)),
        "ENTRYPOINT" => config.entrypoint = Some(command_form(rest)),
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest, true).map_err(|w| err(&w))? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(rest, false).map_err(|w| err(&w))? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in words(rest).map_err(|w| err(&w))? {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = config.volumes.get_or_insert_with(BTreeMap::new);
            let list = match json_array(rest) {
                Some(v) => v,
                None => words(rest).map_err(|w| err(&w))?,
            };
            for v in list {
                vols.insert(v, json!({}));
            }
        }
        "USER" => config.user = Some(rest.to_string()),
        "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
        "WORKDIR" => {
            let dir = if rest.starts_with('/') {
                rest.to_string()
            } else {
                let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
                format!("{}/{}", base.trim_end_matches('/'), rest)
            };
            config.working_dir = Some(dir);
        }
        "ONBUILD" => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_string()),
        "HEALTHCHECK" => {
            let test: Value = if rest.eq_ignore_ascii_case("NONE") {
                json!(["NONE"])
            } else if let Some(cmd) = rest
                .strip_prefix("CMD ")
                .or_else(|| rest.strip_prefix("cmd "))
            {
                match json_array(cmd.trim()) {
                    Some(v) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v);
                        json!(t)
                    }
                    None => json!(["CMD-SHELL", cmd.trim()]),
                }
            } else {
                return Err(err(
                    "expected HEALTHCHECK NONE or HEALTHCHECK CMD …; options such as --interval are not supported here",
                ));
            };
            config.healthcheck = Some(json!({ "Test": test }));
        }
        _ => unreachable!("checked against ALLOWED"),
    }
    Ok(())
}

/// Exec form (`["a","b"]`) or shell form (run through `/bin/sh -c`).
fn command_form(rest: &str) -> Vec<String> {
    json_array(rest)
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()])
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Splits on unquoted white space, removing quotes and backslash escapes.
fn words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err("unmatched quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `K=V K2="v 2"` pairs, or (when `legacy` allows it) the old `K V…` form.
fn key_values(s: &str, legacy: bool) -> std::result::Result<Vec<(String, String)>, String> {
    let ws = words(s)?;
    if legacy && !ws[0].contains('=') {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| "expected KEY=VALUE or KEY VALUE".to_string())?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    ws.into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("{w:?} is not KEY=VALUE"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply_change(&mut c, ch).unwrap();
        }
        c
    }

    #[test]
    fn applies_docker_changes() {
        let c = apply(&[
            r#"CMD ["/bin/sh"]"#,
            "ENTRYPOINT echo hi",
            r#"ENV A=1 B="two words""#,
            "ENV A 3",
            "EXPOSE 80 53/udp",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "LABEL org.x=y",
            "VOLUME /data",
        ]);
        assert_eq!(c.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(
            c.exposed_ports.unwrap().keys().collect::<Vec<_>>(),
            ["53/udp", "80/tcp"]
        );
        assert_eq!(c.working_dir.unwrap(), "/app/sub");
        assert_eq!(c.user.unwrap(), "1000:1000");
        assert_eq!(c.labels.unwrap()["org.x"], "y");
        assert!(c.volumes.unwrap().contains_key("/data"));
    }

    #[test]
    fn rejects_build_instructions() {
        let mut c = ContainerConfig::default();
        let e = apply_change(&mut c, "RUN rm -rf /")
            .unwrap_err()
            .to_string();
        assert!(e.contains("RUN is not a valid change command"), "{e}");
    }
}
