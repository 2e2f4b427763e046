//! `os/arch[/variant]` platforms and picking one out of an index.

use std::fmt;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

/// The platform this binary runs on, in OCI terms (`--platform`'s default).
pub const HOST: &str = if cfg!(target_arch = "x86_64") {
    "linux/amd64"
} else if cfg!(target_arch = "aarch64") {
    "linux/arm64"
} else if cfg!(target_arch = "riscv64") {
    "linux/riscv64"
} else if cfg!(target_arch = "powerpc64") {
    "linux/ppc64le"
} else if cfg!(target_arch = "s390x") {
    "linux/s390x"
} else if cfg!(target_arch = "x86") {
    "linux/386"
} else {
    "linux/arm"
};

impl Default for Platform {
    /// The host's platform.
    fn default() -> Self {
        let (os, arch) = HOST.split_once('/').unwrap_or(("linux", "amd64"));
        Platform {
            os: os.into(),
            arch: arch.into(),
            variant: None,
        }
    }
}

fn norm_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "armhf" | "armel" => "arm".into(),
        "i386" | "i686" => "386".into(),
        o => o.to_string(),
    }
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: norm_arch(arch),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: norm_arch(arch),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::Unsupported(format!(
                "platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }

    /// Does a candidate from an index (os, architecture, variant) satisfy us?
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.arch != norm_arch(arch) {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(w), Some(v)) => w == v,
            // arm64 manifests often omit the default variant v8.
            (Some(w), None) => self.arch == "arm64" && w == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest entry of an image index, as far as selection needs it.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub platform: Option<(String, String, Option<String>)>,
}

/// Parse the manifests of an OCI index / Docker manifest list leniently
/// (unknown architectures must not make the whole index unreadable).
pub fn index_entries(data: &[u8]) -> Result<Vec<IndexEntry>> {
    let v: serde_json::Value = serde_json::from_slice(data)?;
    let list = v
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| crate::error::malformed("image index", "no manifests array"))?;
    let s = |x: &serde_json::Value, k: &str| x.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok(list
        .iter()
        .map(|m| IndexEntry {
            digest: s(m, "digest").unwrap_or_default(),
            media_type: s(m, "mediaType").unwrap_or_default(),
            size: m.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
            platform: m.get("platform").map(|p| {
                (
                    s(p, "os").unwrap_or_default(),
                    s(p, "architecture").unwrap_or_default(),
                    s(p, "variant"),
                )
            }),
        })
        .collect())
}

/// Pick the manifest for `want` out of an index.
pub fn select(data: &[u8], want: &Platform) -> Result<IndexEntry> {
    let entries = index_entries(data)?;
    entries
        .iter()
        .find(|e| matches!(&e.platform, Some((os, a, v)) if want.matches(os, a, v.as_deref())))
        .cloned()
        .ok_or_else(|| Error::NoPlatform {
            wanted: want.to_string(),
            available: entries
                .iter()
                .filter_map(|e| e.platform.as_ref())
                .map(|(o, a, v)| match v {
                    Some(v) => format!("{o}/{a}/{v}"),
                    None => format!("{o}/{a}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        let idx = br#"{"schemaVersion":2,"manifests":[
          {"digest":"sha256:a","mediaType":"m","size":1,"platform":{"os":"linux","architecture":"amd64"}},
          {"digest":"sha256:b","mediaType":"m","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
          {"digest":"sha256:c","mediaType":"m","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#;
        assert_eq!(
            select(idx, &Platform::default()).unwrap().digest,
            "sha256:a"
        );
        assert_eq!(
            select(idx, &Platform::parse("linux/aarch64").unwrap())
                .unwrap()
                .digest,
            "sha256:b"
        );
        assert_eq!(
            select(idx, &Platform::parse("linux/arm/v7").unwrap())
                .unwrap()
                .digest,
            "sha256:c"
        );
        let e = select(idx, &Platform::parse("linux/s390x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux/arm64/v8"), "{e}");
    }
}
