//! The three report formats: the human layout exactly, the JSON shape, and
//! SARIF 2.1.0 checked against the schema's rules.
//!
//! The SARIF 2.1.0 JSON schema is not in the repository and there is no
//! network here, so the `jsonschema` crate cannot load it. Instead
//! [`check_sarif`] encodes, by hand, what the schema
//! (sarif-schema-2.1.0.json, OASIS errata 01) says about every object berth
//! writes: required properties, the properties allowed (the schema sets
//! `additionalProperties: false` on them), types, enums and minimums, plus the
//! cross-references the specification requires (`ruleIndex` names the rule
//! with `ruleId`, `artifactLocation.index` names an artifact).

use std::collections::BTreeSet;

use berth_lint::{catalog, lint, render, Config, Options};
use serde_json::Value;

const SRC: &str = "FROM node\n\tRUN apk add curl\nCMD node index.js\n";

#[test]
fn human_report_layout() {
    let report = lint(SRC, &Options::default()).unwrap();
    let text = render::human("Dockerfile", SRC, &report);
    let expected = [
        "warning[root-user]: the final stage sets no USER, so the container runs as root unless the base image node chose another user",
        " --> Dockerfile:1:6",
        "  |",
        "1 | FROM node",
        "  |      ^^^^",
        "  |",
        &format!("  = why: {}", catalog::rule("root-user").unwrap().why),
        &format!("  = fix: {}", catalog::rule("root-user").unwrap().fix),
        "",
    ]
    .join("\n");
    assert!(text.starts_with(&expected), "{text}");
    // A tab before the keyword: the caret lines up with the expanded text.
    assert!(
        text.contains("2 |     RUN apk add curl\n  |             ^^^\n"),
        "{text}"
    );
    assert!(text.ends_with("Dockerfile: 4 warnings, 1 info\n"), "{text}");

    let clean = lint("FROM alpine:3.20\nUSER app\n", &Options::default()).unwrap();
    assert_eq!(render::human("x", "", &clean), "x: no findings\n");
}

#[test]
fn json_report_shape() {
    let report = lint(SRC, &Options::default()).unwrap();
    let v: Value = serde_json::from_str(&render::json("Dockerfile", &report)).unwrap();
    assert_eq!(v["path"], "Dockerfile");
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), report.findings.len());
    let f = &findings[0];
    for key in [
        "rule",
        "severity",
        "title",
        "message",
        "line",
        "column",
        "end_line",
        "end_column",
        "why",
        "fix",
        "hadolint",
        "buildkit",
    ] {
        assert!(f.get(key).is_some(), "{key} missing in {f}");
    }
    assert_eq!(f["rule"], "root-user");
    assert_eq!(f["hadolint"], serde_json::json!(["DL3002"]));
    assert_eq!(v["summary"]["warning"], 4);
    assert_eq!(v["summary"]["info"], 1);
    assert_eq!(v["summary"]["error"], 0);
}

// --- SARIF 2.1.0 ---------------------------------------------------------------

/// What the SARIF 2.1.0 schema says about one object type.
struct Shape {
    name: &'static str,
    required: &'static [&'static str],
    allowed: &'static [&'static str],
}

const SARIF_LOG: Shape = Shape {
    name: "sarifLog",
    required: &["version", "runs"],
    allowed: &[
        "$schema",
        "version",
        "runs",
        "inlineExternalProperties",
        "properties",
    ],
};
const RUN: Shape = Shape {
    name: "run",
    required: &["tool"],
    allowed: &[
        "tool",
        "invocations",
        "conversion",
        "language",
        "versionControlProvenance",
        "originalUriBaseIds",
        "artifacts",
        "logicalLocations",
        "graphs",
        "results",
        "automationDetails",
        "runAggregates",
        "baselineGuid",
        "redactionTokens",
        "defaultEncoding",
        "defaultSourceLanguage",
        "newlineSequences",
        "columnKind",
        "externalPropertyFileReferences",
        "threadFlowLocations",
        "taxonomies",
        "addresses",
        "translations",
        "policies",
        "webRequests",
        "webResponses",
        "specialLocations",
        "properties",
    ],
};
const TOOL: Shape = Shape {
    name: "tool",
    required: &["driver"],
    allowed: &["driver", "extensions", "properties"],
};
const TOOL_COMPONENT: Shape = Shape {
    name: "toolComponent",
    required: &["name"],
    allowed: &[
        "guid",
        "name",
        "organization",
        "product",
        "productSuite",
        "shortDescription",
        "fullDescription",
        "fullName",
        "version",
        "semanticVersion",
        "dottedQuadFileVersion",
        "releaseDateUtc",
        "downloadUri",
        "informationUri",
        "globalMessageStrings",
        "notifications",
        "rules",
        "taxa",
        "locations",
        "language",
        "contents",
        "isComprehensive",
        "localizedDataSemanticVersion",
        "minimumRequiredLocalizedDataSemanticVersion",
        "associatedComponent",
        "translationMetadata",
        "supportedTaxonomies",
        "properties",
    ],
};
const REPORTING_DESCRIPTOR: Shape = Shape {
    name: "reportingDescriptor",
    required: &["id"],
    allowed: &[
        "id",
        "deprecatedIds",
        "guid",
        "deprecatedGuids",
        "name",
        "deprecatedNames",
        "shortDescription",
        "fullDescription",
        "messageStrings",
        "defaultConfiguration",
        "helpUri",
        "help",
        "relationships",
        "properties",
    ],
};
const MULTIFORMAT_MESSAGE: Shape = Shape {
    name: "multiformatMessageString",
    required: &["text"],
    allowed: &["text", "markdown", "properties"],
};
const REPORTING_CONFIGURATION: Shape = Shape {
    name: "reportingConfiguration",
    required: &[],
    allowed: &["enabled", "level", "rank", "parameters", "properties"],
};
const ARTIFACT: Shape = Shape {
    name: "artifact",
    required: &[],
    allowed: &[
        "description",
        "location",
        "parentIndex",
        "offset",
        "length",
        "roles",
        "mimeType",
        "contents",
        "encoding",
        "sourceLanguage",
        "hashes",
        "lastModifiedTimeUtc",
        "properties",
    ],
};
const ARTIFACT_LOCATION: Shape = Shape {
    name: "artifactLocation",
    required: &[],
    allowed: &["uri", "uriBaseId", "index", "description", "properties"],
};
const RESULT: Shape = Shape {
    name: "result",
    required: &["message"],
    allowed: &[
        "ruleId",
        "ruleIndex",
        "rule",
        "kind",
        "level",
        "message",
        "analysisTarget",
        "locations",
        "guid",
        "correlationGuid",
        "occurrenceCount",
        "partialFingerprints",
        "fingerprints",
        "stacks",
        "codeFlows",
        "graphs",
        "graphTraversals",
        "relatedLocations",
        "suppressions",
        "baselineState",
        "rank",
        "attachments",
        "hostedViewerUri",
        "workItemUris",
        "provenance",
        "fixes",
        "taxa",
        "webRequest",
        "webResponse",
        "properties",
    ],
};
const MESSAGE: Shape = Shape {
    name: "message",
    required: &[],
    allowed: &["text", "markdown", "id", "arguments", "properties"],
};
const LOCATION: Shape = Shape {
    name: "location",
    required: &[],
    allowed: &[
        "id",
        "physicalLocation",
        "logicalLocations",
        "message",
        "annotations",
        "relationships",
        "properties",
    ],
};
const PHYSICAL_LOCATION: Shape = Shape {
    name: "physicalLocation",
    required: &[],
    allowed: &[
        "address",
        "artifactLocation",
        "region",
        "contextRegion",
        "properties",
    ],
};
const REGION: Shape = Shape {
    name: "region",
    required: &[],
    allowed: &[
        "startLine",
        "startColumn",
        "endLine",
        "endColumn",
        "charOffset",
        "charLength",
        "byteOffset",
        "byteLength",
        "snippet",
        "message",
        "sourceLanguage",
        "properties",
    ],
};
const ARTIFACT_CONTENT: Shape = Shape {
    name: "artifactContent",
    required: &[],
    allowed: &["text", "binary", "rendered", "properties"],
};

fn object<'v>(
    v: &'v Value,
    shape: &Shape,
    errors: &mut Vec<String>,
) -> Option<&'v serde_json::Map<String, Value>> {
    let Some(map) = v.as_object() else {
        errors.push(format!("{} is not an object: {v}", shape.name));
        return None;
    };
    for r in shape.required {
        if !map.contains_key(*r) {
            errors.push(format!("{} lacks required {r}", shape.name));
        }
    }
    for k in map.keys() {
        if !shape.allowed.contains(&k.as_str()) {
            errors.push(format!(
                "{} has a property the schema does not allow: {k}",
                shape.name
            ));
        }
    }
    if let Some(p) = map.get("properties") {
        property_bag(p, errors);
    }
    Some(map)
}

/// `propertyBag`: any properties, but `tags` is an array of unique strings.
fn property_bag(v: &Value, errors: &mut Vec<String>) {
    let Some(map) = v.as_object() else {
        errors.push(format!("propertyBag is not an object: {v}"));
        return;
    };
    if let Some(tags) = map.get("tags") {
        let strings: Option<Vec<&str>> = tags
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let unique = strings
            .as_ref()
            .map(|s| s.iter().collect::<BTreeSet<_>>().len() == s.len());
        if unique != Some(true) {
            errors.push(format!("propertyBag.tags must be unique strings: {tags}"));
        }
    }
}

fn string(v: Option<&Value>, what: &str, errors: &mut Vec<String>) {
    if let Some(v) = v {
        if !v.is_string() {
            errors.push(format!("{what} is not a string: {v}"));
        }
    }
}

fn integer_at_least(
    v: Option<&Value>,
    min: i64,
    what: &str,
    errors: &mut Vec<String>,
) -> Option<i64> {
    let v = v?;
    match v.as_i64() {
        Some(n) if n >= min => Some(n),
        _ => {
            errors.push(format!("{what} must be an integer >= {min}: {v}"));
            None
        }
    }
}

fn multiformat(v: Option<&Value>, errors: &mut Vec<String>) {
    if let Some(v) = v {
        if let Some(m) = object(v, &MULTIFORMAT_MESSAGE, errors) {
            string(m.get("text"), "multiformatMessageString.text", errors);
        }
    }
}

/// A URI reference (RFC 3986): no spaces, controls or characters that must be escaped.
fn uri_reference(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c))
}

const LEVELS: &[&str] = &["none", "note", "warning", "error"];

/// Checks a SARIF log against the 2.1.0 schema's rules for the objects berth writes.
fn check_sarif(log: &Value) -> Vec<String> {
    let mut e = Vec::new();
    let Some(root) = object(log, &SARIF_LOG, &mut e) else {
        return e;
    };
    if root.get("version") != Some(&Value::from("2.1.0")) {
        e.push(format!(
            "version must be \"2.1.0\": {:?}",
            root.get("version")
        ));
    }
    if let Some(s) = root.get("$schema") {
        if !s
            .as_str()
            .is_some_and(|s| s.starts_with("https://") && uri_reference(s))
        {
            e.push(format!("$schema must be a URI: {s}"));
        }
    }
    let Some(runs) = root.get("runs").and_then(Value::as_array) else {
        e.push("runs must be an array".into());
        return e;
    };
    for run in runs {
        let Some(run) = object(run, &RUN, &mut e) else {
            continue;
        };
        if let Some(kind) = run.get("columnKind") {
            if !matches!(kind.as_str(), Some("utf16CodeUnits" | "unicodeCodePoints")) {
                e.push(format!("columnKind not in the enum: {kind}"));
            }
        }
        let mut rule_ids: Vec<String> = Vec::new();
        if let Some(tool) = run.get("tool").and_then(|t| object(t, &TOOL, &mut e)) {
            if let Some(driver) = tool
                .get("driver")
                .and_then(|d| object(d, &TOOL_COMPONENT, &mut e))
            {
                string(driver.get("name"), "toolComponent.name", &mut e);
                string(driver.get("version"), "toolComponent.version", &mut e);
                if let Some(u) = driver.get("informationUri") {
                    if !u.as_str().is_some_and(uri_reference) {
                        e.push(format!("informationUri must be a URI: {u}"));
                    }
                }
                for rule in driver
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(rule) = object(rule, &REPORTING_DESCRIPTOR, &mut e) else {
                        continue;
                    };
                    string(rule.get("id"), "reportingDescriptor.id", &mut e);
                    string(rule.get("name"), "reportingDescriptor.name", &mut e);
                    rule_ids.push(
                        rule.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    );
                    for k in ["shortDescription", "fullDescription", "help"] {
                        multiformat(rule.get(k), &mut e);
                    }
                    if let Some(c) = rule.get("defaultConfiguration") {
                        if let Some(c) = object(c, &REPORTING_CONFIGURATION, &mut e) {
                            if c.get("enabled").is_some_and(|v| !v.is_boolean()) {
                                e.push("reportingConfiguration.enabled must be a boolean".into());
                            }
                            if let Some(l) = c.get("level") {
                                if !l.as_str().is_some_and(|l| LEVELS.contains(&l)) {
                                    e.push(format!(
                                        "reportingConfiguration.level not in the enum: {l}"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut artifacts = 0;
        for a in run
            .get("artifacts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            artifacts += 1;
            if let Some(a) = object(a, &ARTIFACT, &mut e) {
                if let Some(l) = a.get("location") {
                    artifact_location(l, 0, &mut e);
                }
            }
        }
        for result in run
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(r) = object(result, &RESULT, &mut e) else {
                continue;
            };
            string(r.get("ruleId"), "result.ruleId", &mut e);
            if let Some(i) = integer_at_least(r.get("ruleIndex"), -1, "result.ruleIndex", &mut e) {
                let named = usize::try_from(i).ok().and_then(|i| rule_ids.get(i));
                if named.map(String::as_str) != r.get("ruleId").and_then(Value::as_str) {
                    e.push(format!(
                        "ruleIndex {i} does not name ruleId {:?}",
                        r.get("ruleId")
                    ));
                }
            }
            if let Some(l) = r.get("level") {
                if !l.as_str().is_some_and(|l| LEVELS.contains(&l)) {
                    e.push(format!("result.level not in the enum: {l}"));
                }
            }
            if let Some(m) = r.get("message").and_then(|m| object(m, &MESSAGE, &mut e)) {
                if !m.contains_key("text") && !m.contains_key("id") {
                    e.push("message needs text or id".into());
                }
                string(m.get("text"), "message.text", &mut e);
            }
            for loc in r
                .get("locations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(loc) = object(loc, &LOCATION, &mut e) else {
                    continue;
                };
                let Some(p) = loc.get("physicalLocation") else {
                    continue;
                };
                let Some(p) = object(p, &PHYSICAL_LOCATION, &mut e) else {
                    continue;
                };
                if !p.contains_key("address") && !p.contains_key("artifactLocation") {
                    e.push("physicalLocation needs address or artifactLocation".into());
                }
                if let Some(a) = p.get("artifactLocation") {
                    artifact_location(a, artifacts, &mut e);
                }
                if let Some(region) = p.get("region").and_then(|r| object(r, &REGION, &mut e)) {
                    let start =
                        integer_at_least(region.get("startLine"), 1, "region.startLine", &mut e);
                    let start_col = integer_at_least(
                        region.get("startColumn"),
                        1,
                        "region.startColumn",
                        &mut e,
                    );
                    let end = integer_at_least(region.get("endLine"), 1, "region.endLine", &mut e);
                    let end_col =
                        integer_at_least(region.get("endColumn"), 1, "region.endColumn", &mut e);
                    if let (Some(s), Some(en)) = (start, end) {
                        if en < s || (en == s && end_col < start_col) {
                            e.push(format!("region ends before it starts: {region:?}"));
                        }
                    }
                    if let Some(snippet) = region.get("snippet") {
                        if let Some(s) = object(snippet, &ARTIFACT_CONTENT, &mut e) {
                            string(s.get("text"), "artifactContent.text", &mut e);
                        }
                    }
                }
            }
        }
    }
    e
}

fn artifact_location(v: &Value, artifacts: usize, e: &mut Vec<String>) {
    let Some(a) = object(v, &ARTIFACT_LOCATION, e) else {
        return;
    };
    if let Some(u) = a.get("uri") {
        if !u.as_str().is_some_and(uri_reference) {
            e.push(format!("artifactLocation.uri must be a URI reference: {u}"));
        }
    }
    if let Some(i) = integer_at_least(a.get("index"), -1, "artifactLocation.index", e) {
        if artifacts > 0 && i >= artifacts as i64 {
            e.push(format!("artifactLocation.index {i} names no artifact"));
        }
    }
}

#[test]
fn sarif_follows_the_2_1_0_schema() {
    let src = "FROM node AS Build\nENV DB_PASSWORD=x\nRUN apk add curl\nRUN cd /app && make\nCMD node index.js\n";
    let report = lint(src, &Options::default()).unwrap();
    assert!(report.findings.len() >= 5);
    let text = render::sarif(
        "dir with space/Dockerfile",
        src,
        &report,
        &Config::default(),
        "0.1.0",
    );
    let log: Value = serde_json::from_str(&text).unwrap();
    let errors = check_sarif(&log);
    assert!(errors.is_empty(), "{errors:#?}");

    let run = &log["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        catalog::RULES.len()
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings.len());
    let secret = results
        .iter()
        .find(|r| r["ruleId"] == "secret-in-env-or-arg")
        .unwrap();
    assert_eq!(secret["level"], "error");
    let loc = &secret["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "dir%20with%20space/Dockerfile"
    );
    assert_eq!(loc["region"]["startLine"], 2);
    assert_eq!(loc["region"]["startColumn"], 5);
    assert_eq!(loc["region"]["snippet"]["text"], "ENV DB_PASSWORD=x");
    // Info and style map to SARIF's "note".
    let cd = results.iter().find(|r| r["ruleId"] == "cd-in-run").unwrap();
    assert_eq!(cd["level"], "note");
}

#[test]
fn the_checker_catches_schema_violations() {
    let bad = serde_json::json!({
        "version": "2.0.0",
        "runs": [{
            "tool": { "driver": { "name": "x", "rules": [{ "id": "a" }] } },
            "results": [{
                "ruleId": "b",
                "ruleIndex": 0,
                "level": "fatal",
                "message": {},
                "locations": [{ "physicalLocation": { "region": { "startLine": 0 } } }],
                "extra": true,
            }],
        }],
    });
    let errors = check_sarif(&bad);
    for needle in [
        "version must be",
        "does not name ruleId",
        "result.level not in the enum",
        "message needs text or id",
        "physicalLocation needs address or artifactLocation",
        "region.startLine must be",
        "does not allow: extra",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle}: {errors:#?}"
        );
    }
}

#[test]
fn rules_md_is_generated_from_the_catalog() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RULES.md");
    let generated = render::catalog_markdown();
    if std::env::var_os("BERTH_UPDATE_DOCS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "RULES.md is out of date: run `BERTH_UPDATE_DOCS=1 cargo test -p berth-lint --test reports`"
    );
}
