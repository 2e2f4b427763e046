//! Credentials (flags, auth.json files) and WWW-Authenticate challenges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use tracing::debug;

use crate::error::{malformed, Error, IoContext, Result};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files searched, in order, when no `--authfile` is given
/// (the same order podman/skopeo use, then Docker's).
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(PathBuf::from(x).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        let h = PathBuf::from(h);
        v.push(h.join(".config/containers/auth.json"));
        v.push(h.join(".docker/config.json"));
    }
    v
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Keys under which an auth file may list `registry`.
fn candidate_keys(registry: &str) -> Vec<String> {
    let mut hosts = vec![registry.to_string()];
    if registry == crate::reference::DOCKER_HUB {
        hosts.extend(["index.docker.io".into(), "registry-1.docker.io".into()]);
    }
    let mut keys = Vec::new();
    for h in &hosts {
        keys.push(h.clone());
        keys.push(format!("https://{h}"));
        keys.push(format!("http://{h}"));
    }
    if registry == crate::reference::DOCKER_HUB {
        keys.push("https://index.docker.io/v1/".into());
    }
    keys
}

fn from_file(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(path),
    };
    let file: AuthFile =
        serde_json::from_slice(&data).map_err(|e| malformed(path.display().to_string(), e))?;
    for key in candidate_keys(registry) {
        let Some(entry) = file.auths.get(&key) else {
            continue;
        };
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        if let Some(a) = &entry.auth {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|e| malformed(format!("{}: auth for {key}", path.display()), e))?;
            let s = String::from_utf8(raw)
                .map_err(|e| malformed(format!("{}: auth for {key}", path.display()), e))?;
            let (u, p) = s.split_once(':').ok_or_else(|| {
                malformed(
                    format!("{}: auth for {key}", path.display()),
                    "not user:password",
                )
            })?;
            debug!(file = %path.display(), key, "using stored credentials");
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
    }
    Ok(None)
}

/// Credentials for `registry` from `authfile` (only that file) or the default files.
pub fn lookup_credentials(registry: &str, authfile: Option<&Path>) -> Result<Option<Credentials>> {
    if let Some(f) = authfile {
        if !f.exists() {
            return Err(Error::Io {
                path: f.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        return from_file(f, registry);
    }
    for f in default_auth_files() {
        if let Some(c) = from_file(&f, registry)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, v) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (val, rest) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (v[..end].trim().to_string(), &v[end..])
        };
        params.insert(k, val);
        s = rest.trim_start_matches([',', ' ']);
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn auth_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        std::fs::write(&p, r#"{"auths":{"localhost:5000":{"auth":"dTpw"},"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#).unwrap();
        let c = lookup_credentials("localhost:5000", Some(&p))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let c = lookup_credentials("docker.io", Some(&p)).unwrap().unwrap();
        assert_eq!(c.username, "a");
        assert!(lookup_credentials("quay.io", Some(&p)).unwrap().is_none());
    }
}
