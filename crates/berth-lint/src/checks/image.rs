//! Rules about base images, stages and the user the final image runs as.

use berth_dockerfile::instructions::{Instruction, Stage};
use berth_dockerfile::shell::Envs;
use berth_oci::Reference;

use crate::model::{suggest, Base, Ctx, ImageRef, Value, PLATFORM_ARGS};
use crate::rule::Hit;

/// Whether a `USER` value means root.
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "root" || name.trim_start_matches('0').is_empty() && !name.is_empty()
}

/// Base images known to run as a non-root user by default: berth cannot read
/// an image's config, so this short list keeps the rule quiet for them.
fn runs_as_non_root(image: &ImageRef) -> bool {
    let Some(r) = &image.reference else {
        return false;
    };
    let path = r.path();
    let tag = r.tag().unwrap_or("");
    tag.contains("nonroot")
        || path.contains("unprivileged")
        || path.starts_with("bitnami/")
        || r.domain() == "cgr.dev"
}

pub(crate) fn root_user(ctx: &Ctx) -> Vec<Hit> {
    let last = ctx.df.stages.len() - 1;
    match &ctx.stages[last].end.user {
        Some((Value::Known(user), stage, ci)) if is_root(user) => {
            let cmd = ctx.command(*stage, *ci);
            if *ci == usize::MAX {
                // FROM scratch: no user database, uid 0.
                return vec![Hit {
                    location: ctx.at(&ctx.df.stages[*stage].from),
                    message: "the final image is built FROM scratch with no USER, so its process runs as uid 0 (root)".into(),
                }];
            }
            vec![Hit {
                location: ctx.at(cmd),
                message: format!("the last USER is {user}: the container runs as root"),
            }]
        }
        Some(_) => Vec::new(),
        None => {
            let (root, base) = ctx.root_base(last);
            if let Base::Image(img) = base {
                if runs_as_non_root(img) {
                    return Vec::new();
                }
            }
            let from = &ctx.df.stages[last].from;
            let from_base = &ctx.df.stages[root].base_name;
            vec![Hit {
                location: ctx.locate(from, &[from_base]),
                message: format!(
                    "the final stage sets no USER, so the container runs as root unless the base image {} chose another user",
                    match base {
                        Base::Image(img) => img.text.clone(),
                        _ => from_base.clone(),
                    }
                ),
            }]
        }
    }
}

pub(crate) fn unpinned_base_image(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, stage) in ctx.df.stages.iter().enumerate() {
        let Base::Image(img) = &ctx.stages[i].base else {
            continue;
        };
        let Some(r) = &img.reference else {
            continue;
        };
        if r.digest().is_some() {
            continue;
        }
        let message = match r.tag() {
            None => format!(
                "FROM {} has no tag, so it builds on {}:latest, whatever that is on the day of the build",
                img.text, img.text
            ),
            Some("latest") => format!(
                "FROM {} follows the moving `latest` tag, whatever it points to on the day of the build",
                img.text
            ),
            Some(_) => continue,
        };
        hits.push(Hit {
            location: ctx.locate(&stage.from, &[&stage.base_name]),
            message,
        });
    }
    hits
}

/// Official images with much smaller variants, and the tag suffixes of those.
const SMALLER_VARIANTS: &[(&str, &[&str])] = &[
    ("node", &["slim", "alpine"]),
    ("python", &["slim", "alpine"]),
    ("ruby", &["slim", "alpine"]),
    ("perl", &["slim"]),
    ("debian", &["slim"]),
    ("nginx", &["alpine"]),
    ("httpd", &["alpine"]),
    ("redis", &["alpine"]),
    ("postgres", &["alpine"]),
    ("almalinux", &["minimal"]),
    ("rockylinux", &["minimal"]),
    ("oraclelinux", &["slim"]),
];

/// Tag words that already name a small variant.
const SMALL_TAG_WORDS: &[&str] = &["slim", "alpine", "minimal", "distroless", "busybox"];

pub(crate) fn large_base_image(ctx: &Ctx) -> Vec<Hit> {
    let last = ctx.df.stages.len() - 1;
    let (root, base) = ctx.root_base(last);
    let Base::Image(img) = base else {
        return Vec::new();
    };
    let Some(name) = img.official() else {
        return Vec::new();
    };
    let Some((_, variants)) = SMALLER_VARIANTS.iter().find(|(n, _)| *n == name) else {
        return Vec::new();
    };
    let tag = img.tag();
    if img
        .reference
        .as_ref()
        .is_some_and(|r| r.digest().is_some() && tag.is_none())
    {
        return Vec::new();
    }
    if tag.is_some_and(|t| SMALL_TAG_WORDS.iter().any(|w| t.contains(w))) {
        return Vec::new();
    }
    let version = tag
        .filter(|t| *t != "latest")
        .map(|t| t.split('-').next().unwrap_or(t));
    let options: Vec<String> = variants
        .iter()
        .map(|v| match version {
            Some(ver) => format!("{name}:{ver}-{v}"),
            None => format!("{name}:<version>-{v}"),
        })
        .collect();
    let stage = &ctx.df.stages[root];
    vec![Hit {
        location: ctx.locate(&stage.from, &[&stage.base_name]),
        message: format!(
            "the final image is based on {}, the full variant; {} has the same software in a fraction of the size",
            img.text,
            options.join(" or ")
        ),
    }]
}

/// Repositories that are build toolchains whatever the Dockerfile does.
const TOOLCHAINS: &[&str] = &["maven", "gradle", "golang", "rust", "gcc", "sbt"];

/// JDK images: a toolchain when the stage compiles Java.
const JDKS: &[&str] = &[
    "openjdk",
    "eclipse-temurin",
    "amazoncorretto",
    "ibm-semeru-runtimes",
];

fn runs_any(ctx: &Ctx, chain: &[usize], pred: impl Fn(&str, &[String]) -> bool) -> bool {
    chain.iter().any(|&s| {
        (0..ctx.df.stages[s].commands.len()).any(|ci| {
            ctx.script(s, ci).is_some_and(|script| {
                script.named().any(|(_, c)| {
                    let args: Vec<String> = c.args().iter().map(|w| w.text.clone()).collect();
                    pred(c.name().unwrap_or(""), &args)
                })
            })
        })
    })
}

/// `npm run build`, `yarn build`, `npx tsc`, `vite build` …
fn is_js_build(name: &str, args: &[String]) -> bool {
    let first = args.first().map(String::as_str);
    let script = match first {
        Some("run" | "run-script") => args.get(1).map(String::as_str),
        other => other,
    };
    match name {
        "npm" | "yarn" | "pnpm" | "bun" => {
            script.is_some_and(|s| s == "build" || s.starts_with("build:"))
        }
        "npx" => first.is_some_and(|t| matches!(t, "tsc" | "webpack" | "vite" | "next" | "ng")),
        "tsc" | "webpack" => true,
        "vite" | "next" | "ng" | "nuxt" => first == Some("build"),
        _ => false,
    }
}

fn is_java_build(name: &str, _args: &[String]) -> bool {
    matches!(
        name,
        "javac" | "mvn" | "mvnw" | "gradle" | "gradlew" | "sbt"
    )
}

pub(crate) fn toolchain_final_stage(ctx: &Ctx) -> Vec<Hit> {
    let chain = &ctx.final_chain;
    // A multi-stage build: the final image copies from a stage outside its chain.
    let copies_from_other_stage = chain.iter().any(|&s| {
        ctx.df.stages[s]
            .commands
            .iter()
            .any(|c| match &c.instruction {
                Instruction::Copy(copy) => copy.from.as_deref().is_some_and(|from| {
                    let index = from.parse::<usize>().ok();
                    ctx.df.stages.iter().enumerate().any(|(i, st)| {
                        !chain.contains(&i)
                            && (index == Some(i)
                                || st.name.as_deref() == Some(from.to_lowercase().as_str()))
                    })
                }),
                _ => false,
            })
    });
    if copies_from_other_stage {
        return Vec::new();
    }
    let (root, base) = ctx.root_base(ctx.df.stages.len() - 1);
    let Base::Image(img) = base else {
        return Vec::new();
    };
    let (Some(repo), Some(short)) = (img.repository(), img.short_name()) else {
        return Vec::new();
    };
    let tag = img.tag().unwrap_or("latest");
    let why = if TOOLCHAINS.contains(&short.as_str()) && img.official().is_some()
        || repo == "mcr.microsoft.com/dotnet/sdk"
    {
        "a build toolchain"
    } else if img.official() == Some("node") && runs_any(ctx, chain, is_js_build) {
        "Node.js with the whole build toolchain, used here to build"
    } else if JDKS.contains(&short.as_str())
        && img.official().is_some()
        && (tag.contains("jdk") || short == "amazoncorretto")
        && runs_any(ctx, chain, is_java_build)
    {
        "a JDK, used here to compile"
    } else {
        return Vec::new();
    };
    let stage: &Stage = &ctx.df.stages[root];
    vec![Hit {
        location: ctx.locate(&stage.from, &[&stage.base_name]),
        message: format!(
            "the final image is {}, {why}, and no earlier stage does the build: compilers, sources and caches ship with the application",
            img.text
        ),
    }]
}

/// The meta ARG names, and BuildKit's platform arguments, as an environment.
fn meta_names(ctx: &Ctx) -> Vec<String> {
    ctx.meta.vars.keys().cloned().collect()
}

pub(crate) fn undefined_arg_in_from(ctx: &Ctx) -> Vec<Hit> {
    let declared = meta_names(ctx);
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let mut words = vec![stage.base_name.as_str()];
        words.extend(stage.platform.as_deref());
        for word in words {
            let Ok(res) = ctx.lex.process_word_with_matches(word, &Envs::new()) else {
                continue;
            };
            for name in res.unmatched.iter().chain(res.matched.iter()) {
                if declared.contains(name) || PLATFORM_ARGS.contains(&name.as_str()) {
                    continue;
                }
                let hint = suggest(name, &declared)
                    .map(|s| format!(" (did you mean ${s}?)"))
                    .unwrap_or_default();
                hits.push(Hit {
                    location: ctx.locate(&stage.from, &[word]),
                    message: format!(
                        "FROM uses ${name}, which no ARG before the first FROM declares{hint}: it expands to nothing"
                    ),
                });
            }
        }
    }
    hits
}

pub(crate) fn invalid_default_arg_in_from(ctx: &Ctx) -> Vec<Hit> {
    let mut env = Envs::new();
    for (k, v) in &ctx.meta.vars {
        if let Value::Known(v) = &v.value {
            env.set(k, v);
        }
    }
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        if !stage.base_name.contains('$') {
            continue;
        }
        let Ok(res) = ctx.lex.process_word_with_matches(&stage.base_name, &env) else {
            continue;
        };
        // Only the file's own defaults are judged; BuildKit's platform
        // arguments are always set.
        if res
            .unmatched
            .iter()
            .any(|n| PLATFORM_ARGS.contains(&n.as_str()))
        {
            continue;
        }
        let valid = !res.result.is_empty()
            && (res.result.eq_ignore_ascii_case("scratch")
                || Reference::parse_normalized_name(&res.result).is_ok());
        if !valid {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &[&stage.base_name]),
                message: format!(
                    "with the ARG defaults, FROM {} becomes {:?}, which is not an image name: a build without --build-arg fails",
                    stage.base_name, res.result
                ),
            });
        }
    }
    hits
}

pub(crate) fn redundant_target_platform(ctx: &Ctx) -> Vec<Hit> {
    let env = Envs::from_slice(&["TARGETPLATFORM=linux/amd64"]);
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let Some(platform) = &stage.platform else {
            continue;
        };
        let Ok(res) = ctx.lex.process_word_with_matches(platform, &env) else {
            continue;
        };
        if res.matched.len() == 1
            && res.matched.contains("TARGETPLATFORM")
            && res.unmatched.is_empty()
            && res.result == "linux/amd64"
        {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &["--platform"]),
                message: format!("--platform={platform} is what FROM does by default"),
            });
        }
    }
    hits
}

pub(crate) fn from_platform_const(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let Some(platform) = &stage.platform else {
            continue;
        };
        let Ok(res) = ctx.lex.process_word_with_matches(platform, &Envs::new()) else {
            continue;
        };
        if !res.matched.is_empty() || !res.unmatched.is_empty() {
            continue;
        }
        let mut parts = res.result.split('/');
        let os = parts.next().unwrap_or("");
        let arch = parts.next().unwrap_or("");
        if os.is_empty() {
            continue;
        }
        // A stage named for its platform (`build-amd64`) means it on purpose.
        let name = stage.name.as_deref().unwrap_or("");
        if name.contains(os) || (!arch.is_empty() && name.contains(arch)) {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(&stage.from, &["--platform"]),
            message: format!(
                "FROM --platform={} pins the stage to one platform: builds for other platforms get this one's binaries",
                res.result
            ),
        });
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_users() {
        for u in ["root", "0", "root:root", "0:0", "00"] {
            assert!(is_root(u), "{u}");
        }
        for u in ["app", "1000", "10", "nobody:0", ""] {
            assert!(!is_root(u), "{u}");
        }
    }
}
