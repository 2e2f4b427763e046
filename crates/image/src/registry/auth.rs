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
    /// base64 of `user:password` (RFC 7617), as in an auth.json `auth` field.
    pub fn encoded(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// The `Authorization` header value for HTTP Basic auth.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encoded())
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

/// The registries that have credentials in `authfile` (only that file) or
/// in the default files, as their `auths` keys name them, without scheme
/// or path (`https://index.docker.io/v1/` -> `index.docker.io`), sorted.
/// Errors: a file that exists but cannot be read or parsed.
pub fn logged_in_registries(authfile: Option<&Path>) -> Result<Vec<String>> {
    let files = authfile.map(|f| vec![f.to_path_buf()]).unwrap_or_else(default_auth_files);
    let mut out = std::collections::BTreeSet::new();
    for path in files {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).ctx(&path),
        };
        let file: AuthFile = serde_json::from_slice(&data).map_err(|e| malformed(path.display().to_string(), e))?;
        for k in file.auths.keys() {
            let host = k.trim_start_matches("https://").trim_start_matches("http://");
            out.insert(host.split('/').next().unwrap_or(host).to_string());
        }
    }
    Ok(out.into_iter().collect())
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

// ---- login / logout: writing an auth.json ----

/// Docker Hub's legacy key, which Docker and older tools read.
const DOCKER_HUB_V1: &str = "https://index.docker.io/v1/";

/// Errors of [`store_credentials`] and [`remove_credentials`]; messages
/// name the file, the cause is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("{0:?} is not a registry host (e.g. registry.example.com:5000)")]
    NotAHost(String),
    #[error("not logged in to {0}")]
    NotLoggedIn(String),
    #[error("{} is not valid JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The auth file `login`/`logout` write when none is given, as podman
/// does: `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `~/.config/containers/auth.json` (empty variables count as unset).
/// `None`: none of them is set (no HOME).
pub fn login_auth_file() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        return Some(p.into());
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        return Some(PathBuf::from(d).join("containers/auth.json"));
    }
    Some(PathBuf::from(env("HOME")?).join(".config/containers/auth.json"))
}

/// The `auths` key for `registry`: the host[:port], without scheme or
/// trailing slash (`https://registry.example.com:5000/` ->
/// `registry.example.com:5000`).
pub fn auth_key(registry: &str) -> Result<String, AuthFileError> {
    let h = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
        return Err(AuthFileError::NotAHost(registry.to_string()));
    }
    Ok(h.to_string())
}

/// The keys an entry for `key` is stored under: Docker Hub also under
/// its legacy v1 key, which other readers look for.
fn stored_keys(key: &str) -> Vec<&str> {
    if key == crate::reference::DOCKER_HUB {
        vec![key, DOCKER_HUB_V1]
    } else {
        vec![key]
    }
}

/// The file as a JSON object (anything else is refused as not valid).
fn load_auth_file(path: &Path) -> Result<serde_json::Value, AuthFileError> {
    match std::fs::read(path) {
        Ok(d) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&d)
            .map(serde_json::Value::Object)
            .map_err(|source| AuthFileError::NotJson {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(serde_json::json!({"auths": {}}))
        }
        Err(source) => Err(AuthFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `v` to `path` atomically (temp file + rename), mode 0600.
fn save_auth_file(path: &Path, v: &serde_json::Value) -> Result<(), AuthFileError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| AuthFileError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|source| AuthFileError::Write {
            path: tmp.clone(),
            source,
        })?;
    f.write_all(serde_json::to_string_pretty(v)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).map_err(|source| AuthFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Store `creds` for `key` (see [`auth_key`]) in the containers auth.json
/// at `path` (`auths.<key>.auth` = base64 `user:password`, the form
/// [`lookup_credentials`] reads), keeping everything else in the file.
pub fn store_credentials(path: &Path, key: &str, creds: &Credentials) -> Result<(), AuthFileError> {
    let mut v = load_auth_file(path)?;
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    let entry = serde_json::json!({"auth": creds.encoded()});
    for k in stored_keys(key) {
        v["auths"][k] = entry.clone();
    }
    save_auth_file(path, &v)
}

/// Remove the entries for `key` from the auth.json at `path`.
/// Errors: [`AuthFileError::NotLoggedIn`] when there was none.
pub fn remove_credentials(path: &Path, key: &str) -> Result<(), AuthFileError> {
    let mut v = load_auth_file(path)?;
    let mut removed = false;
    if let Some(m) = v["auths"].as_object_mut() {
        for k in stored_keys(key) {
            removed |= m.remove(k).is_some();
        }
    }
    if !removed {
        return Err(AuthFileError::NotLoggedIn(key.to_string()));
    }
    save_auth_file(path, &v)
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

    #[test]
    fn base64_of_user_password() {
        let c = |u: &str, p: &str| Credentials {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(c("user", "pass").encoded(), "dXNlcjpwYXNz");
        assert_eq!(c("a", "").encoded(), "YTo=");
        assert_eq!(c("", "").encoded(), "Og==");
        assert_eq!(c("a", "b").basic_header(), "Basic YTpi");
    }

    #[test]
    fn login_then_logout() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/auth.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"auths":{"other:1":{"auth":"dTpw"}},"credHelpers":{}}"#).unwrap();
        let c = Credentials {
            username: "user".into(),
            password: "pass".into(),
        };
        let key = auth_key("https://localhost:5000/").unwrap();
        assert_eq!(key, "localhost:5000");
        store_credentials(&p, &key, &c).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["auths"]["localhost:5000"]["auth"], "dXNlcjpwYXNz");
        assert_eq!(v["auths"]["other:1"]["auth"], "dTpw");
        assert!(v["credHelpers"].is_object());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(lookup_credentials("localhost:5000", Some(&p)).unwrap(), Some(c.clone()));

        remove_credentials(&p, &key).unwrap();
        assert!(lookup_credentials("localhost:5000", Some(&p)).unwrap().is_none());
        let e = remove_credentials(&p, &key).unwrap_err();
        assert_eq!(e.to_string(), "not logged in to localhost:5000");

        // A file that is JSON but not an object is refused, not overwritten.
        std::fs::write(&p, "[]").unwrap();
        let e = store_credentials(&p, &key, &c).unwrap_err();
        assert!(matches!(e, AuthFileError::NotJson { .. }), "{e}");
    }

    #[test]
    fn docker_hub_is_stored_under_both_keys() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        let c = Credentials {
            username: "a".into(),
            password: "b".into(),
        };
        store_credentials(&p, "docker.io", &c).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["auths"]["docker.io"]["auth"], "YTpi");
        assert_eq!(v["auths"]["https://index.docker.io/v1/"]["auth"], "YTpi");
        remove_credentials(&p, "docker.io").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["auths"], serde_json::json!({}));
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(auth_key("http://r.example:5000").unwrap(), "r.example:5000");
        for bad in ["", "https://", "r.example/path", "a b"] {
            let e = auth_key(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{bad:?} is not a registry host (e.g. registry.example.com:5000)")
            );
        }
    }
}
