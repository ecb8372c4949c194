//! The part of Go's text/template that Docker users put in `--format`:
//! `{{.Field.Sub}}`, `{{json .}}`, `{{json .Field}}`, `{{join .List ", "}}`,
//! `{{index .Map "key"}}`, `{{upper …}}`, `{{lower …}}`, `{{println …}}`,
//! evaluated over the JSON shape of the object being printed.

use serde_json::Value;

use crate::error::CliError;

#[derive(Debug)]
enum Piece {
    Text(String),
    Action(Vec<Arg>),
}

#[derive(Debug, Clone)]
enum Arg {
    Ident(String),
    Path(Vec<String>),
    Str(String),
}

#[derive(Debug)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self, CliError> {
        let err = |why: &str| CliError::usage(format!("template parsing error: {why} in {src:?}"));
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| err("unclosed action"))?;
            let inner = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            pieces.push(Piece::Action(lex(inner).map_err(|w| err(&w))?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    pub fn render(&self, v: &Value) -> Result<String, CliError> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(args) => out.push_str(&eval(args, v)?),
            }
        }
        Ok(out)
    }

    /// The header line of a `table` format: each `{{.Field}}` becomes its
    /// column title.
    pub fn render_header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(args) => {
                    let field = args.iter().rev().find_map(|a| match a {
                        Arg::Path(p) if !p.is_empty() => Some(p.join(".")),
                        _ => None,
                    });
                    let title = field
                        .as_deref()
                        .and_then(|f| {
                            headers
                                .iter()
                                .find(|(k, _)| *k == f)
                                .map(|(_, h)| h.to_string())
                        })
                        .or_else(|| field.map(|f| f.to_uppercase()))
                        .unwrap_or_default();
                    out.push_str(&title);
                }
            }
        }
        out
    }
}

fn lex(s: &str) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut lit = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => lit.push('\n'),
                        Some('t') => lit.push('\t'),
                        Some(o) => lit.push(o),
                        None => return Err("unterminated string".into()),
                    },
                    Some(o) => lit.push(o),
                    None => return Err("unterminated string".into()),
                }
            }
            args.push(Arg::Str(lit));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            if word == "." {
                args.push(Arg::Path(Vec::new()));
            } else if let Some(p) = word.strip_prefix('.') {
                args.push(Arg::Path(p.split('.').map(str::to_string).collect()));
            } else {
                args.push(Arg::Ident(word));
            }
        }
    }
    if args.is_empty() {
        return Err("empty action".into());
    }
    Ok(args)
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

fn value_of(a: &Arg, v: &Value) -> Result<Value, CliError> {
    match a {
        Arg::Path(p) => lookup(v, p).cloned().ok_or_else(|| {
            CliError::usage(format!("template: can't evaluate field {}", p.join(".")))
        }),
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Ident(i) => Err(CliError::usage(format!(
            "template: function {i:?} not defined"
        ))),
    }
}

fn eval(args: &[Arg], v: &Value) -> Result<String, CliError> {
    match &args[0] {
        Arg::Ident(f) => {
            let rest = &args[1..];
            let arg = |i: usize| -> Result<Value, CliError> {
                rest.get(i).map(|a| value_of(a, v)).unwrap_or_else(|| {
                    Err(CliError::usage(format!(
                        "template: wrong number of args for {f}"
                    )))
                })
            };
            match f.as_str() {
                "json" => Ok(serde_json::to_string(&arg(0)?).expect("json")),
                "join" => {
                    let list = arg(0)?;
                    let sep = go_string(&arg(1)?);
                    Ok(list
                        .as_array()
                        .map(|a| a.iter().map(go_string).collect::<Vec<_>>().join(&sep))
                        .unwrap_or_default())
                }
                "index" => {
                    let m = arg(0)?;
                    let k = arg(1)?;
                    let found = match (&m, &k) {
                        (Value::Object(o), Value::String(s)) => o.get(s).cloned(),
                        (Value::Array(a), Value::String(s)) => {
                            s.parse::<usize>().ok().and_then(|i| a.get(i).cloned())
                        }
                        _ => None,
                    };
                    Ok(found
                        .map(|x| go_string(&x))
                        .unwrap_or_else(|| "<no value>".into()))
                }
                "upper" => Ok(go_string(&arg(0)?).to_uppercase()),
                "lower" => Ok(go_string(&arg(0)?).to_lowercase()),
                "println" => Ok(format!(
                    "{}\n",
                    rest.iter()
                        .map(|a| value_of(a, v).map(|x| go_string(&x)))
                        .collect::<Result<Vec<_>, _>>()?
                        .join(" ")
                )),
                other => Err(CliError::usage(format!(
                    "template: function {other:?} not defined"
                ))),
            }
        }
        a => {
            if args.len() > 1 {
                return Err(CliError::usage(
                    "template: can't give argument to non-function",
                ));
            }
            Ok(go_string(&value_of(a, v)?))
        }
    }
}

/// How Go's fmt prints a value in a template.
fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => {
            let mut keys: Vec<_> = o.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_string(&o[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_docker_style_templates() {
        let v = json!({"ID": "abc", "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"a": "1"}}});
        let r = |t: &str| Template::parse(t).unwrap().render(&v).unwrap();
        assert_eq!(r("{{.ID}}"), "abc");
        assert_eq!(r("{{.Config.Cmd}}"), "[sh -c x]");
        assert_eq!(r("{{json .Config.Cmd}}"), r#"["sh","-c","x"]"#);
        assert_eq!(r(r#"{{join .Config.Cmd ","}}"#), "sh,-c,x");
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#), "1");
        assert_eq!(r("id={{ .ID }}!"), "id=abc!");
    }
}
