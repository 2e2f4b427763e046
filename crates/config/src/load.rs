//! Finding, reading and checking the configuration file.

use crate::error::ConfigError;
use crate::model::{Config, DEFAULT_CONFIG_PATH};
use crate::secret::Secret;
use crate::validate::validate;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A loaded configuration plus what the caller should log.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file that was read, if any (a missing default file is fine).
    pub path: Option<PathBuf>,
    /// Non-fatal problems (e.g. world-readable secrets) for the binary to log.
    pub warnings: Vec<String>,
    /// `NEXCAGE_LOG_LEVEL`, if set.
    pub log_level: Option<String>,
}

/// Where the config comes from: explicit path (`--config`), then
/// `NEXCAGE_CONFIG`, then `/etc/nexcage/config.json`. Never the cwd.
pub fn resolve_path(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (PathBuf, bool) {
    if let Some(p) = explicit {
        return (p.to_path_buf(), true);
    }
    if let Some(p) = env("NEXCAGE_CONFIG").filter(|s| !s.is_empty()) {
        return (PathBuf::from(p), true);
    }
    (PathBuf::from(DEFAULT_CONFIG_PATH), false)
}

/// Load using the process environment.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with_env(explicit, &|k| std::env::var(k).ok())
}

/// Load with an injectable environment (tests).
pub fn load_with_env(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let (path, must_exist) = resolve_path(explicit, env);
    let mut warnings = Vec::new();
    let (mut config, found) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let c = parse_str(&text, &path)?;
            warnings.extend(world_readable_warning(&path, &c));
            (c, Some(path.clone()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            (Config::default(), None)
        }
        Err(e) => return Err(ConfigError::Io { path, source: e }),
    };
    if let Some(p) = env("NEXCAGE_STORAGE_PATH").filter(|s| !s.is_empty()) {
        config.images.storage_path = Some(PathBuf::from(p));
    }
    validate(&config)?;
    tracing::debug!(path = ?found, "configuration loaded");
    Ok(Loaded {
        config,
        path: found,
        warnings,
        log_level: env("NEXCAGE_LOG_LEVEL"),
    })
}

/// Parse and validate JSON text; `path` only labels errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        // A type error would echo the value: hide it for secret keys.
        let msg = if key.ends_with("password") || key.ends_with("token_value") {
            "invalid value (hidden: secret)".to_string()
        } else {
            e.inner().to_string()
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            key,
            msg,
        }
    })?;
    validate(&config)?;
    Ok(config)
}

fn is_world_readable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o004 != 0)
        .unwrap_or(false)
}

fn world_readable_warning(path: &Path, c: &Config) -> Option<String> {
    let mut keys = Vec::new();
    if c.proxmox.password.is_some() {
        keys.push("proxmox.password");
    }
    if c.api.token_value.is_some() {
        keys.push("api.token_value");
    }
    if keys.is_empty() || !is_world_readable(path) {
        return None;
    }
    Some(format!(
        "config file {} is world-readable and holds secrets ({}); run chmod 600 on it",
        path.display(),
        keys.join(", ")
    ))
}

/// Read `proxmox.token_file`: one line `USER@REALM!TOKENID=SECRET`.
/// Returns the token id, its secret and warnings (world-readable file).
pub fn read_token_file(path: &Path) -> Result<(String, Secret, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let (id, secret) = line.split_once('=').ok_or_else(|| {
        ConfigError::invalid(
            "proxmox.token_file",
            format!("{}: expected USER@REALM!TOKENID=SECRET", path.display()),
        )
    })?;
    let id_ok = id
        .split_once('!')
        .is_some_and(|(u, t)| u.contains('@') && !t.is_empty());
    if !id_ok || secret.is_empty() {
        return Err(ConfigError::invalid(
            "proxmox.token_file",
            format!("{}: expected USER@REALM!TOKENID=SECRET", path.display()),
        ));
    }
    let mut warnings = Vec::new();
    if is_world_readable(path) {
        warnings.push(format!(
            "token file {} is world-readable; run chmod 600 on it",
            path.display()
        ));
    }
    Ok((id.to_string(), Secret::new(secret), warnings))
}
