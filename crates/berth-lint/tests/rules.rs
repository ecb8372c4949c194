//! Each rule on a Dockerfile that should trigger it and on one that should
//! not; suppression comments; the configuration file; the catalog's metadata
//! against the hadolint and BuildKit catalogs.

use std::path::Path;

use berth_lint::{catalog, lint, Config, ContextFacts, Level, Options, Severity};

/// Options with every rule on, so default-off rules are tested too.
fn all_on() -> Options {
    let mut config = Config::default();
    for r in catalog::RULES {
        config.set(r, Level::On);
    }
    Options {
        config,
        context: None,
    }
}

/// The lines where `rule` fires.
fn fires(src: &str, rule: &str) -> Vec<usize> {
    assert!(catalog::rule(rule).is_some(), "no rule {rule}");
    let report = lint(src, &all_on()).unwrap_or_else(|e| panic!("{e}\n{src}"));
    report
        .findings
        .iter()
        .filter(|f| f.rule_id() == rule)
        .map(|f| f.location.line)
        .collect()
}

/// `(rule, Dockerfiles that trigger it, Dockerfiles that do not)`.
const CASES: &[(&str, &[&str], &[&str])] = &[
    (
        "root-user",
        &[
            "FROM alpine:3.20\nCMD [\"sh\"]\n",
            "FROM alpine:3.20\nUSER app\nUSER root\n",
            "FROM alpine:3.20\nUSER 0:0\n",
            "FROM scratch\nCOPY app /app\n",
            "FROM alpine:3.20 AS base\nUSER app\nFROM alpine:3.20\n",
        ],
        &[
            "FROM alpine:3.20\nRUN adduser -S app\nUSER app\n",
            "FROM alpine:3.20 AS base\nUSER 10001\nFROM base\nRUN true\n",
            "FROM gcr.io/distroless/static:nonroot\n",
            "FROM alpine:3.20\nARG RUNAS\nUSER $RUNAS\n",
        ],
    ),
    (
        "secret-in-env-or-arg",
        &[
            "FROM alpine:3.20\nENV DB_PASSWORD=hunter2\n",
            "ARG GITHUB_TOKEN=ghp_abc\nFROM alpine:3.20\n",
            "FROM alpine:3.20\nENV api_key \"abc def\"\n",
        ],
        &[
            "FROM alpine:3.20\nENV DB_PASSWORD_FILE=/run/secrets/db\n",
            "FROM alpine:3.20\nENV MYSQL_ALLOW_EMPTY_PASSWORD=yes\n",
            "FROM alpine:3.20\nENV GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\n",
            "FROM alpine:3.20\nARG TOKEN\nENV TOKEN=$TOKEN\n",
        ],
    ),
    (
        "secret-via-build-arg",
        &[
            "FROM alpine:3.20\nARG NPM_TOKEN\nRUN echo x\n",
            "FROM alpine:3.20\nARG TOKEN\nENV API_TOKEN=$TOKEN\n",
        ],
        &[
            "FROM alpine:3.20\nARG NPM_VERSION\n",
            "FROM alpine:3.20\nENV SECRET_PATH=/run/secrets\n",
            "FROM alpine:3.20\nENV PASSWORD=\n",
        ],
    ),
    (
        "sudo-in-run",
        &["FROM debian:12\nRUN sudo -u app make install\n"],
        &["FROM debian:12\nRUN su-exec app true && echo sudo\n"],
    ),
    (
        "chmod-777",
        &[
            "FROM alpine:3.20\nRUN chmod -R 777 /app\n",
            "FROM alpine:3.20\nRUN chmod a+rwx /data\n",
            "FROM alpine:3.20\nCOPY --chmod=777 run.sh /\n",
        ],
        &[
            "FROM alpine:3.20\nRUN chmod 755 /app && chmod 1777 /var/run/app\n",
            "FROM alpine:3.20\nRUN mkdir /t && chmod 777 /t && make -C /t && rm -rf /t\n",
            "FROM alpine:3.20 AS build\nRUN chmod 777 /out\nFROM alpine:3.20\nCOPY --from=build /out /out\n",
        ],
    ),
    (
        "unpinned-base-image",
        &[
            "FROM alpine\n",
            "FROM alpine:latest\n",
            "FROM docker.io/library/node AS build\nFROM node:20\n",
        ],
        &[
            "FROM alpine:3.20\n",
            "FROM alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
            "FROM alpine:3.20 AS base\nFROM base\n",
            "FROM scratch\n",
            "ARG TAG=3.20\nFROM alpine:$TAG\n",
        ],
    ),
    (
        "non-interactive-install",
        &[
            "FROM debian:12\nRUN apt-get update && apt-get install curl\n",
            "FROM rockylinux:9\nRUN yum install git\n",
            "FROM opensuse/leap:15\nRUN zypper install git\n",
        ],
        &[
            "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n",
            "FROM debian:12\nRUN apt-get -qq install curl && apt-get install -yq wget\n",
            "FROM rockylinux:9\nRUN yum -y install git\n",
            "FROM opensuse/leap:15\nRUN zypper -n install git\n",
            "FROM debian:12\nRUN yes | apt-get install curl\n",
        ],
    ),
    (
        "cache-unfriendly-copy",
        &[
            "FROM node:20-slim\nWORKDIR /app\nCOPY . .\nRUN npm ci\n",
            "FROM python:3.12-slim\nCOPY app/ /app/\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n",
            "FROM golang:1.22 AS build\nCOPY . .\nRUN go build -o /app\nFROM scratch\nCOPY --from=build /app /app\n",
            "FROM maven:3.9 AS build\nCOPY src src\nCOPY pom.xml .\nRUN mvn package\n",
        ],
        &[
            "FROM node:20-slim\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci\nCOPY . .\n",
            "FROM maven:3.9 AS build\nCOPY pom.xml .\nRUN mvn dependency:go-offline\nCOPY src src\nRUN mvn package\n",
            "FROM node:20-slim\nCOPY . .\nRUN npm install -g serve\n",
            "FROM golang:1.22\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN go build\n",
        ],
    ),
    (
        "toolchain-final-stage",
        &[
            "FROM golang:1.22\nWORKDIR /src\nCOPY . .\nRUN go build -o /app\nCMD [\"/app\"]\n",
            "FROM node:20\nCOPY . .\nRUN npm ci && npm run build\nCMD [\"node\", \"dist/index.js\"]\n",
            "FROM eclipse-temurin:21-jdk\nCOPY . .\nRUN ./mvnw package\n",
        ],
        &[
            "FROM golang:1.22 AS build\nRUN go build -o /app\nFROM gcr.io/distroless/static\nCOPY --from=build /app /app\n",
            "FROM node:20-slim\nCOPY . .\nRUN npm ci\nCMD [\"node\", \"index.js\"]\n",
            "FROM eclipse-temurin:21-jdk\nCOPY app.jar /app.jar\n",
        ],
    ),
    (
        "large-base-image",
        &[
            "FROM python:3.12\n",
            "FROM node:20-bookworm\n",
            "FROM debian:bookworm\n",
            "FROM golang:1.22 AS build\nFROM nginx:1.27\n",
        ],
        &[
            "FROM python:3.12-slim\n",
            "FROM node:20-alpine3.20\n",
            "FROM debian:bookworm-slim\n",
            "FROM python:3.12 AS build\nFROM python:3.12-slim\n",
            "FROM ubuntu:24.04\n",
        ],
    ),
    (
        "apt-lists-not-removed",
        &[
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n",
            "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
        ],
        &[
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n",
            "FROM debian:13\nRUN apt-get install --update -y curl; apt-get dist-clean\n",
            "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y curl\n",
            "FROM debian:12 AS build\nRUN apt-get update && apt-get install -y gcc\nFROM debian:12-slim\n",
        ],
    ),
    (
        "apt-no-install-recommends",
        &["FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"],
        &[
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n",
            "FROM debian:12\nRUN echo 'APT::Install-Recommends \"0\";' > /etc/apt/apt.conf.d/norec\nRUN apt-get install -y curl\n",
        ],
    ),
    (
        "apk-no-cache",
        &[
            "FROM alpine:3.20\nRUN apk add curl\n",
            "FROM alpine:3.20\nRUN apk update && apk add --no-cache curl\n",
        ],
        &[
            "FROM alpine:3.20\nRUN apk add --no-cache curl\n",
            "FROM alpine:3.20\nRUN apk add curl && rm -rf /var/cache/apk/*\n",
            "FROM alpine:3.20\nRUN apk add --no-network --virtual .deps so:libc.musl-x86_64.so.1\n",
        ],
    ),
    (
        "pip-no-cache-dir",
        &[
            "FROM python:3.12-slim\nRUN pip install flask\n",
            "FROM python:3.12-slim\nRUN python3 -m pip install -r requirements.txt\n",
        ],
        &[
            "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask\n",
            "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n",
            "FROM python:3.12-slim\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\n",
            "FROM python:3.12 AS build\nRUN pip install flask\nFROM python:3.12-slim\n",
        ],
    ),
    (
        "package-cache-not-cleaned",
        &[
            "FROM rockylinux:9\nRUN dnf install -y git\n",
            "FROM almalinux:9\nRUN yum install telnet -y\n",
        ],
        &[
            "FROM rockylinux:9\nRUN dnf install -y git && dnf clean all\n",
            "FROM oraclelinux:9-slim\nRUN microdnf install -y git; microdnf clean all\n",
        ],
    ),
    (
        "rm-in-later-layer",
        &[
            "FROM alpine:3.20\nCOPY . /app\nRUN rm -rf /app/tests\n",
            "FROM alpine:3.20\nWORKDIR /app\nCOPY big.tar.gz .\nRUN tar xf big.tar.gz && rm big.tar.gz\n",
            "FROM alpine:3.20\nRUN wget -O /tmp/x.tgz https://example.com/x.tgz\nRUN rm /tmp/x.tgz\n",
        ],
        &[
            "FROM alpine:3.20\nRUN wget -O /tmp/x.tgz https://example.com/x.tgz && tar xf /tmp/x.tgz && rm /tmp/x.tgz\n",
            "FROM alpine:3.20\nCOPY app /app\nRUN rm -rf /var/cache/apk/*\n",
            "FROM nginx:1.27\nRUN rm /etc/nginx/conf.d/default.conf\n",
        ],
    ),
    (
        "consecutive-runs",
        &[
            "FROM alpine:3.20\nRUN apk add --no-cache curl\nRUN mkdir /app\n",
            "FROM alpine:3.20\nRUN a\n# note\nRUN b\nRUN c\n",
        ],
        &[
            "FROM alpine:3.20\nRUN apk add --no-cache curl && mkdir /app\n",
            "FROM alpine:3.20\nRUN a\nENV X=1\nRUN b\n",
            "FROM alpine:3.20\nRUN set -eux; a; b; c\nRUN d\n",
            "FROM alpine:3.20\nRUN a\nRUN --mount=type=cache,target=/c b\n",
            "FROM alpine:3.20 AS build\nRUN a\nRUN b\nFROM alpine:3.20\n",
        ],
    ),
    (
        "add-instead-of-copy",
        &[
            "FROM alpine:3.20\nADD app.py /app/\n",
            "FROM alpine:3.20\nADD src/ config.json /app/\n",
        ],
        &[
            "FROM alpine:3.20\nADD rootfs.tar.gz /\n",
            "FROM alpine:3.20\nADD https://example.com/x.txt /x.txt\n",
            "FROM alpine:3.20\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x /x\n",
            "FROM alpine:3.20\nCOPY app.py /app/\n",
        ],
    ),
    (
        "shell-form-cmd",
        &[
            "FROM alpine:3.20\nCMD node index.js\n",
            "FROM alpine:3.20\nENTRYPOINT exec /app \"$@\"\n",
        ],
        &[
            "FROM alpine:3.20\nCMD [\"node\", \"index.js\"]\n",
            "FROM alpine:3.20\nSHELL [\"/bin/bash\", \"-c\"]\nCMD node index.js\n",
        ],
    ),
    (
        "multiple-cmd-entrypoint",
        &[
            "FROM alpine:3.20\nCMD [\"a\"]\nCMD [\"b\"]\n",
            "FROM alpine:3.20\nENTRYPOINT [\"a\"]\nRUN x\nENTRYPOINT [\"b\"]\n",
            "FROM alpine:3.20\nHEALTHCHECK CMD [\"a\"]\nHEALTHCHECK NONE\n",
        ],
        &[
            "FROM alpine:3.20\nENTRYPOINT [\"a\"]\nCMD [\"b\"]\n",
            "FROM alpine:3.20 AS a\nCMD [\"a\"]\nFROM alpine:3.20\nCMD [\"b\"]\n",
        ],
    ),
    (
        "invalid-expose",
        &[
            "FROM alpine:3.20\nEXPOSE 80000\n",
            "FROM alpine:3.20\nEXPOSE 8080:80\n",
            "FROM alpine:3.20\nEXPOSE 80/http\n",
            "FROM alpine:3.20\nENV PORT=http\nEXPOSE $PORT\n",
        ],
        &[
            "FROM alpine:3.20\nEXPOSE 8080/tcp 53/udp 7000-7010\n",
            "FROM alpine:3.20\nEXPOSE $PORT\n",
            "FROM alpine:3.20\nEXPOSE 80/TCP\n",
        ],
    ),
    (
        "expose-proto-casing",
        &["FROM alpine:3.20\nEXPOSE 80/TCP\n"],
        &["FROM alpine:3.20\nEXPOSE 80/tcp\n"],
    ),
    (
        "relative-workdir",
        &["FROM alpine:3.20\nWORKDIR app\n"],
        &[
            "FROM alpine:3.20\nWORKDIR /app\nWORKDIR sub\n",
            "FROM alpine:3.20 AS base\nWORKDIR /app\nFROM base\nWORKDIR sub\n",
            "FROM alpine:3.20\nWORKDIR $HOME\nWORKDIR sub\n",
        ],
    ),
    (
        "cd-in-run",
        &[
            "FROM alpine:3.20\nRUN cd /app && make\n",
            "FROM alpine:3.20\nRUN set -e; cd /src; ./configure; make\n",
        ],
        &[
            "FROM alpine:3.20\nWORKDIR /app\nRUN make\n",
            "FROM alpine:3.20\nRUN cd /tmp && wget x && tar xf x\n",
            "FROM alpine:3.20\nRUN mkdir /src && cd /src && make && cd / && rm -rf /src\n",
            "FROM alpine:3.20\nRUN cd /src && make && cd .. && rm -rf /src\n",
        ],
    ),
    (
        "apt-in-run",
        &["FROM debian:12\nRUN apt update && apt install -y curl\n"],
        &["FROM debian:12\nRUN apt-get update && apt-get install -y curl && apt-cache policy curl\n"],
    ),
    (
        "copy-dest-not-dir",
        &[
            "FROM alpine:3.20\nCOPY a b /app\n",
            "FROM alpine:3.20\nADD a b /opt\n",
        ],
        &[
            "FROM alpine:3.20\nCOPY a b /app/\n",
            "FROM alpine:3.20\nWORKDIR /app\nCOPY a b .\n",
            "FROM alpine:3.20\nCOPY a /app\n",
        ],
    ),
    (
        "invalid-stage-reference",
        &[
            "FROM alpine:3.20 AS a\nCOPY --from=a /x /y\n",
            "FROM alpine:3.20\nCOPY --from=5 /x /y\n",
            "FROM alpine:3.20 AS a\nCOPY --from=b /x /y\nFROM alpine:3.20 AS b\nFROM a\n",
        ],
        &[
            "FROM alpine:3.20 AS a\nFROM alpine:3.20\nCOPY --from=a /x /y\n",
            "FROM alpine:3.20\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\n",
        ],
    ),
    (
        "duplicate-stage-name",
        &["FROM alpine:3.20 AS x\nFROM alpine:3.20 AS X\n"],
        &["FROM alpine:3.20 AS x\nFROM alpine:3.20 AS y\n"],
    ),
    (
        "reserved-stage-name",
        &["FROM alpine:3.20 AS scratch\n", "FROM alpine:3.20 AS context\n"],
        &["FROM alpine:3.20 AS build\n"],
    ),
    (
        "invalid-default-arg-in-from",
        &[
            "ARG BASE\nFROM $BASE\n",
            "ARG NAME=Alpine\nFROM $NAME:3.20\n",
        ],
        &[
            "ARG BASE=alpine:3.20\nFROM $BASE\n",
            "FROM --platform=$BUILDPLATFORM alpine:3.20\n",
        ],
    ),
    (
        "undefined-arg-in-from",
        &["FROM alpine:$VERSION\n", "ARG VERSON=3\nFROM alpine:$VERSION\n"],
        &[
            "ARG VERSION=3.20\nFROM alpine:$VERSION\n",
            "ARG VERSION\nFROM alpine:${VERSION:-3.20}\n",
            "FROM --platform=$BUILDPLATFORM alpine:3.20\n",
        ],
    ),
    (
        "undefined-var",
        &[
            "ARG V=1\nFROM alpine:3.20\nENV X=$V\n",
            "FROM alpine:3.20\nENV MAVEN_HOME=/usr/share/maven\nCOPY x $MAVEN_HOM/\n",
            "FROM scratch\nCOPY app $DEST\n",
        ],
        &[
            "ARG V=1\nFROM alpine:3.20\nARG V\nENV X=$V\n",
            "FROM node:20\nENV P=$NODE_VERSION\n",
            "FROM alpine:3.20\nRUN echo $UNDEFINED_IN_SHELL\n",
        ],
    ),
    (
        "env-self-reference",
        &["FROM alpine:3.20\nENV A=/opt B=$A/bin\n"],
        &[
            "FROM alpine:3.20\nENV A=/opt\nENV B=$A/bin\n",
            "FROM alpine:3.20\nENV A=/opt\nENV A=/usr B=$A/bin\n",
        ],
    ),
    (
        "from-platform-const",
        &["FROM --platform=linux/amd64 alpine:3.20\n"],
        &[
            "FROM --platform=$BUILDPLATFORM alpine:3.20\n",
            "FROM --platform=linux/amd64 alpine:3.20 AS build-amd64\n",
        ],
    ),
    (
        "redundant-target-platform",
        &["FROM --platform=$TARGETPLATFORM alpine:3.20\n"],
        &["FROM --platform=$BUILDPLATFORM alpine:3.20\n"],
    ),
    (
        "maintainer-deprecated",
        &["FROM alpine:3.20\nMAINTAINER me <me@example.com>\n"],
        &["FROM alpine:3.20\nLABEL org.opencontainers.image.authors=\"me\"\n"],
    ),
    (
        "legacy-key-value-format",
        &["FROM alpine:3.20\nENV A 1\n", "FROM alpine:3.20\nLABEL a b c\n"],
        &["FROM alpine:3.20\nENV A=1 B=\"2 3\"\nLABEL a=b\n"],
    ),
    (
        "empty-continuation",
        &["FROM alpine:3.20\nRUN echo a \\\n\n  b\n"],
        &["FROM alpine:3.20\nRUN echo a \\\n  # comment\n  b\n"],
    ),
    (
        "stage-name-casing",
        &["FROM alpine:3.20 AS Build\n"],
        &["FROM alpine:3.20 AS build\n"],
    ),
    (
        "from-as-casing",
        &["FROM alpine:3.20 as build\n", "from alpine:3.20 AS build\n"],
        &["FROM alpine:3.20 AS build\n", "from alpine:3.20 as build\n"],
    ),
    (
        "consistent-instruction-casing",
        &["FROM alpine:3.20\nrun echo\nRUN echo\n", "from alpine:3.20\nrun a\nRun b\n"],
        &["FROM alpine:3.20\nRUN echo\n", "from alpine:3.20\nrun echo\n"],
    ),
    (
        "definition-description",
        &["# the base image\nARG BASE=alpine:3.20\nFROM $BASE\n"],
        &[
            "# BASE the base image\nARG BASE=alpine:3.20\nFROM $BASE\n",
            "ARG BASE=alpine:3.20\nFROM $BASE\n",
        ],
    ),
    (
        "unknown-rule-in-ignore",
        &["FROM alpine:3.20\n# berth-lint ignore=root-usr\nRUN true\n"],
        &["FROM alpine:3.20\n# berth-lint ignore=root-user\nRUN true\n"],
    ),
];

#[test]
fn every_rule_triggers_and_stays_quiet() {
    let mut failures = Vec::new();
    for (rule, bad, good) in CASES {
        for src in *bad {
            if fires(src, rule).is_empty() {
                failures.push(format!("{rule} did not fire on:\n{src}"));
            }
        }
        for src in *good {
            let lines = fires(src, rule);
            if !lines.is_empty() {
                failures.push(format!("{rule} fired (lines {lines:?}) on:\n{src}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n---\n"));
}

#[test]
fn every_rule_has_cases_except_context_rules() {
    for r in catalog::RULES {
        let covered = CASES
            .iter()
            .any(|(id, bad, good)| *id == r.id && !bad.is_empty() && !good.is_empty());
        assert!(covered || r.needs_context, "{} has no test cases", r.id);
    }
}

#[test]
fn findings_point_at_the_problem() {
    let src = "FROM alpine:3.20\nENV A=1 \\\n    DB_PASSWORD=hunter2\n";
    let report = lint(src, &Options::default()).unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule_id() == "secret-in-env-or-arg")
        .unwrap();
    assert_eq!(
        (f.location.line, f.location.column, f.location.end_column),
        (3, 5, 17)
    );
    let report = lint("FROM node\n", &Options::default()).unwrap();
    let f = &report.findings[1];
    assert_eq!(f.rule_id(), "unpinned-base-image");
    assert_eq!((f.location.column, f.location.end_column), (6, 10));
}

// --- suppression -------------------------------------------------------------

fn ids(src: &str) -> Vec<&'static str> {
    lint(src, &Options::default())
        .unwrap()
        .findings
        .iter()
        .map(|f| f.rule_id())
        .collect()
}

#[test]
fn ignore_comment_applies_to_the_next_instruction_only() {
    let src =
        "FROM alpine:3.20\n# berth-lint ignore=shell-form-cmd\nCMD a b\nENTRYPOINT c\nUSER app\n";
    assert_eq!(ids(src), ["shell-form-cmd"]);
    let report = lint(src, &Options::default()).unwrap();
    assert_eq!(report.findings[0].location.line, 4);
}

#[test]
fn ignore_comments_stack_and_cover_continuation_lines() {
    let src = "FROM alpine:3.20\n# berth-lint ignore=consecutive-runs\n# why: kept apart for the cache\n# berth-lint ignore=apk-no-cache, sudo-in-run\nRUN apk add \\\n  curl\nRUN true\nUSER app\n";
    assert_eq!(ids(src), Vec::<&str>::new(), "{:?}", ids(src));
    // A blank line breaks the link between the comment and the instruction.
    let src = "FROM alpine:3.20\n# berth-lint ignore=apk-no-cache\n\nRUN apk add curl\nUSER app\n";
    assert_eq!(ids(src), ["apk-no-cache"]);
}

#[test]
fn file_level_ignore() {
    let src =
        "FROM alpine\nRUN apk add curl\n# berth-lint ignore-file=unpinned-base-image,root-user\n";
    assert_eq!(ids(src), ["apk-no-cache"]);
}

#[test]
fn hadolint_comments_and_check_directive_are_honoured() {
    let src = "FROM alpine:3.20\n# hadolint ignore=DL3019\nRUN apk add curl\nUSER app\n";
    assert!(ids(src).is_empty(), "{:?}", ids(src));
    let src = "# hadolint global ignore=DL3006,DL3002\nFROM alpine\n";
    assert!(ids(src).is_empty(), "{:?}", ids(src));
    let src = "# check=skip=JSONArgsRecommended\nFROM alpine:3.20\nUSER app\nCMD a b\n";
    assert!(ids(src).is_empty(), "{:?}", ids(src));
    let src = "# check=experimental=all\n# the base\nARG BASE=alpine:3.20\nFROM $BASE\nUSER app\n";
    assert_eq!(ids(src), ["definition-description"]);
}

#[test]
fn unknown_ids_in_comments_are_reported_with_a_suggestion() {
    let src = "FROM alpine:3.20\n# berth-lint ignore=root-usr\nUSER app\n";
    let report = lint(src, &Options::default()).unwrap();
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.rule_id(), "unknown-rule-in-ignore");
    assert_eq!((f.location.line, f.location.column), (2, 21));
    assert!(
        f.message.contains("did you mean \"root-user\""),
        "{}",
        f.message
    );
}

#[test]
fn heredoc_bodies_are_not_comments() {
    let src =
        "FROM alpine:3.20\nRUN <<EOF\n# berth-lint ignore-file=root-user\napk add curl\nEOF\n";
    let found = ids(src);
    assert!(found.contains(&"root-user"), "{found:?}");
    assert!(found.contains(&"apk-no-cache"), "{found:?}");
}

// --- configuration -------------------------------------------------------------

#[test]
fn config_relevels_disables_and_enables() {
    let src = "# the base\nARG BASE=alpine\nFROM $BASE\nRUN apk add curl\n";
    let config = Config::parse(
        "[rules]\nroot-user = \"error\"\napk-no-cache = \"off\"\ndefinition-description = \"info\"\nunpinned-base-image = \"on\"\n",
        Path::new("berth-lint.toml"),
    )
    .unwrap();
    let report = lint(
        src,
        &Options {
            config,
            context: None,
        },
    )
    .unwrap();
    let got: Vec<(&str, Severity)> = report
        .findings
        .iter()
        .map(|f| (f.rule_id(), f.severity))
        .collect();
    assert_eq!(
        got,
        [
            ("definition-description", Severity::Info),
            ("root-user", Severity::Error),
            ("unpinned-base-image", Severity::Warning),
        ]
    );
    assert_eq!(report.worst(), Some(Severity::Error));
}

#[test]
fn config_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lint.toml");
    std::fs::write(&path, "[rules]\nno-such = \"off\"\n").unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(e.contains("unknown rule \"no-such\""), "{e}");
    let e = Config::load(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read the lint configuration"), "{e}");
}

// --- the build context ----------------------------------------------------------

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn with_context(src: &str, root: &Path) -> Vec<(&'static str, String)> {
    let facts = ContextFacts::load(root, None).unwrap();
    lint(
        src,
        &Options {
            config: Config::default(),
            context: Some(facts),
        },
    )
    .unwrap()
    .findings
    .into_iter()
    .filter(|f| f.rule.needs_context)
    .map(|f| (f.rule_id(), f.message))
    .collect()
}

#[test]
fn context_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        &[
            ("app.js", "x"),
            ("package.json", "{}"),
            (".env", "TOKEN=x"),
            ("keys/id_rsa", "k"),
            (".git/HEAD", "ref"),
            ("node_modules/a/index.js", "x"),
            ("src/main.js", "x"),
        ],
    );
    let src = "FROM node:20-slim\nCOPY package.json ./\nCOPY src ./src\nCOPY . .\nUSER node\n";
    let found = with_context(src, root);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "context-secret");
    assert!(
        found[0].1.contains(".env") && found[0].1.contains("keys/id_rsa"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("**/.env*"), "{}", found[0].1);
    assert_eq!(found[1].0, "context-bloat");
    assert!(
        found[1].1.contains(".git") && found[1].1.contains("node_modules"),
        "{}",
        found[1].1
    );

    // Excluded by .dockerignore: nothing to report, and copying an excluded
    // file is an error of its own.
    write(
        root,
        &[(".dockerignore", ".git\nnode_modules\n.env\nkeys\n")],
    );
    let found = with_context(src, root);
    assert!(found.is_empty(), "{found:?}");
    let found = with_context("FROM node:20-slim\nCOPY .env /app/\nUSER node\n", root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "copy-ignored-file");
    // Without a context, context rules do not run.
    assert!(!ids("FROM alpine:3.20\nCOPY . .\nUSER app\n")
        .iter()
        .any(|id| catalog::rule(id).unwrap().needs_context));
}

// --- metadata ---------------------------------------------------------------------

const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance");

fn conformance_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{CONFORMANCE}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_buildkit_check_is_covered() {
    let doc = conformance_json("buildkit-lint-rules.json");
    let names: Vec<&str> = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 22);
    for name in &names {
        let covered = catalog::RULES.iter().any(|r| r.buildkit.contains(name));
        let excused = catalog::NOT_COVERED.iter().any(|(n, _)| n == name);
        assert!(
            covered != excused,
            "{name}: covered={covered} excused={excused}"
        );
    }
    for r in catalog::RULES {
        for b in r.buildkit {
            assert!(names.contains(b), "{}: unknown BuildKit check {b}", r.id);
        }
    }
}

#[test]
fn hadolint_ids_exist() {
    let doc = conformance_json("hadolint-rules.json");
    let ids: Vec<&str> = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for r in catalog::RULES {
        for h in r.hadolint {
            assert!(ids.contains(h), "{}: unknown hadolint rule {h}", r.id);
        }
    }
}
