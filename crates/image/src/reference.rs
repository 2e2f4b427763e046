//! Image references: `[registry/]repository[:tag][@sha256:...]`, normalised
//! the way Docker does (`ubuntu` -> `docker.io/library/ubuntu:latest`).

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn bad(s: &str, why: &str) -> Error {
    Error::InvalidReference(s.to_string(), why.to_string())
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ joined by separators '.', '_', '__', '-'+ : approximated by
    // "alphanumeric at both ends, lowercase, only these separators inside".
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Reference {
    /// Parse and normalise. A reference with neither tag nor digest gets `latest`.
    pub fn parse(input: &str) -> Result<Self> {
        let s = input.trim();
        if s.is_empty() {
            return Err(bad(input, "empty"));
        }
        let (rest, digest) = match s.rsplit_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| bad(input, "bad digest"))?),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad(input, "bad tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad(input, "bad registry host"));
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(input, "repository must be lowercase [a-z0-9] components separated by '/', '.', '_' or '-'"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the registry API is asked for: the digest if there is one, else the tag.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Host to talk to for this registry.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Loopback registries (still need an explicit --tls-verify=false for http).
    pub fn is_local(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.registry);
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_docker_hub() {
        assert_eq!(norm("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
        assert_eq!(norm("ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/library/alpine:3"),
            "docker.io/library/alpine:3"
        );
    }

    #[test]
    fn registries_ports_digests() {
        let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let r = Reference::parse(&format!("localhost:5000/a/b@{d}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag, None);
        assert_eq!(r.api_reference(), d);
        assert!(r.is_local());
        let r = Reference::parse(&format!("127.0.0.1:5000/x:v1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.api_reference(), d);
        assert_eq!(norm("quay.io/coreos/etcd:v3"), "quay.io/coreos/etcd:v3");
        assert_eq!(
            Reference::parse("localhost/busybox").unwrap().registry,
            "localhost"
        );
    }

    #[test]
    fn rejects_bad() {
        for s in [
            "",
            "UPPER",
            "a:b:c",
            "a@sha256:12",
            "a/:t",
            "a//b",
            "x:-bad",
        ] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
    }
}
