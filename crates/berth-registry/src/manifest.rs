//! Manifests and indexes as registries serve them (Docker v2 schema 2 and OCI,
//! which share one JSON shape), platform selection in an index, and the
//! schema 2 manifest `docker push` writes.

use std::fmt;

use berth_oci::{media_types, Digest};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every manifest kind berth reads, for the `Accept` header.
pub const ACCEPT_MANIFESTS: &str = concat!(
    "application/vnd.docker.distribution.manifest.v2+json, ",
    "application/vnd.docker.distribution.manifest.list.v2+json, ",
    "application/vnd.oci.image.manifest.v1+json, ",
    "application/vnd.oci.image.index.v1+json"
);

/// Docker's schema 1, which berth (like Docker 28) does not pull.
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlatformSpec {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (schema 2 or OCI).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// What a manifest document turned out to be.
pub enum Fetched {
    Image(Manifest),
    Index(Index),
}

/// Parses a manifest document of media type `content_type` (the response's
/// `Content-Type`; the document's own `mediaType` when that is generic).
pub fn parse(bytes: &[u8], content_type: &str, reference: &str) -> Result<Fetched> {
    let bad = |reason: String| Error::BadManifest {
        reference: reference.to_string(),
        reason,
    };
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let declared = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| bad(format!("not JSON: {e}")))?;
    let own = declared.get("mediaType").and_then(|m| m.as_str());
    let media_type = if media_types::is_index(ct) || media_types::is_manifest(ct) {
        ct
    } else if let Some(m) = own {
        m
    } else if declared.get("manifests").is_some() {
        media_types::OCI_INDEX
    } else {
        media_types::OCI_MANIFEST
    };
    if DOCKER_SCHEMA1.contains(&media_type) || declared.get("schemaVersion") == Some(&1.into()) {
        return Err(bad(
            "Docker Image Format v1 (schema 1) is deprecated and not supported; \
             push the image again with a current tool"
                .into(),
        ));
    }
    if media_types::is_index(media_type) {
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid index: {e}")))?;
        return Ok(Fetched::Index(index));
    }
    if media_types::is_manifest(media_type) {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(bad(format!("schemaVersion {} is not 2", m.schema_version)));
        }
        return Ok(Fetched::Image(m));
    }
    Err(Error::UnsupportedMediaType {
        reference: reference.to_string(),
        media_type: media_type.to_string(),
    })
}

/// A platform to pull: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// linux on this machine's architecture, as Docker defaults (arm64 is
    /// `v8`, arm `v7`: the variants Docker's platform matcher assumes).
    pub fn host() -> Self {
        let architecture = berth_oci::host_architecture().to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Self {
            os: "linux".into(),
            architecture,
            variant,
        }
    }

    /// Parses `--platform`: `linux/amd64`, `linux/arm64/v8`, or just `arm64`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || Error::BadPlatform(s.to_string());
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(bad()),
        };
        // Docker's normalization of common aliases.
        let (architecture, variant) = match (arch.to_lowercase().as_str(), variant) {
            ("x86_64" | "x86-64", v) => ("amd64".to_string(), v),
            ("aarch64", v) => ("arm64".to_string(), v),
            ("arm64", None) => ("arm64".to_string(), Some("v8".to_string())),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            (a, v) => (a.to_string(), v),
        };
        Ok(Self {
            os: os.to_lowercase(),
            architecture,
            variant,
        })
    }

    fn matches(&self, p: &PlatformSpec, loose_variant: bool) -> bool {
        if p.os != self.os || p.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &p.variant) {
            (Some(want), Some(have)) => want == have,
            // arm64 images rarely say v8.
            (Some(want), None) => loose_variant || (self.architecture == "arm64" && want == "v8"),
            (None, _) => true,
        }
    }

    /// The manifest for this platform in an index: an exact match first, then
    /// one that does not name a variant.
    pub fn select<'a>(&self, index: &'a Index) -> Result<&'a Descriptor> {
        let with = |loose: bool| {
            index.manifests.iter().find(|d| {
                media_types::is_manifest(&d.media_type)
                    && d.platform.as_ref().is_some_and(|p| self.matches(p, loose))
            })
        };
        with(false)
            .or_else(|| with(true))
            .ok_or_else(|| Error::NoMatchingPlatform {
                platform: self.to_string(),
            })
    }

    /// Whether an image config's platform is this one.
    pub fn matches_config(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.matches(
            &PlatformSpec {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant: variant.map(str::to_string),
            },
            true,
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The Docker v2 schema 2 manifest `docker push` sends: Docker's field order
/// and its three-space indentation (Go's `json.MarshalIndent(m, "", "   ")`),
/// so a berth push of an image reads like Docker's.
pub fn docker_manifest(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Schema2<'a> {
        schema_version: u32,
        media_type: &'a str,
        config: &'a Descriptor,
        layers: &'a [Descriptor],
    }
    let m = Schema2 {
        schema_version: 2,
        media_type: media_types::DOCKER_MANIFEST,
        config,
        layers,
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    m.serialize(&mut ser).expect("manifest serializes");
    out
}

/// Whether a layer media type is gzip (Docker's and OCI's names for it).
pub fn is_gzip_layer(media_type: &str) -> bool {
    media_type == media_types::DOCKER_LAYER_GZIP || media_type == media_types::OCI_LAYER_GZIP
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn entry(arch: &str, variant: Option<&str>, c: char) -> Descriptor {
        Descriptor {
            media_type: media_types::OCI_MANIFEST.into(),
            size: 1,
            digest: d(c),
            urls: vec![],
            platform: Some(PlatformSpec {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn selects_the_platform_like_docker() {
        let index = Index {
            schema_version: 2,
            manifests: vec![
                entry("arm", Some("v6"), 'a'),
                entry("arm", Some("v7"), 'b'),
                entry("arm64", None, 'c'),
                entry("amd64", None, 'd'),
            ],
        };
        let pick = |p: &str| {
            Platform::parse(p)
                .unwrap()
                .select(&index)
                .unwrap()
                .digest
                .clone()
        };
        assert_eq!(pick("linux/amd64"), d('d'));
        assert_eq!(pick("linux/arm64"), d('c'));
        assert_eq!(pick("linux/arm/v7"), d('b'));
        assert_eq!(pick("x86_64"), d('d'));
        let e = Platform::parse("linux/s390x")
            .unwrap()
            .select(&index)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn docker_manifest_has_dockers_shape() {
        let config = Descriptor {
            media_type: media_types::DOCKER_CONFIG.into(),
            size: 7,
            digest: d('a'),
            urls: vec![],
            platform: None,
        };
        let layer = Descriptor {
            media_type: media_types::DOCKER_LAYER_GZIP.into(),
            size: 9,
            digest: d('b'),
            urls: vec![],
            platform: None,
        };
        let text = String::from_utf8(docker_manifest(&config, &[layer])).unwrap();
        let want = format!(
            "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": {{\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": 7,\n      \"digest\": \"{}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": 9,\n         \"digest\": \"{}\"\n      }}\n   ]\n}}",
            d('a'),
            d('b')
        );
        assert_eq!(text, want);
    }

    #[test]
    fn parses_by_content_type_or_document() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","size":1,"digest":"{}"}},"layers":[]}}"#,
            d('a')
        );
        assert!(matches!(
            parse(m.as_bytes(), media_types::DOCKER_MANIFEST, "r").unwrap(),
            Fetched::Image(_)
        ));
        assert!(matches!(
            parse(m.as_bytes(), "application/octet-stream", "r").unwrap(),
            Fetched::Image(_)
        ));
        let i = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse(i.as_bytes(), "text/plain", "r").unwrap(),
            Fetched::Index(_)
        ));
        let e = parse(
            br#"{"schemaVersion":1,"name":"x"}"#,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "r",
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("schema 1"), "{e}");
    }
}
