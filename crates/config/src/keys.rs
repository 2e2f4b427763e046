//! Dotted-key get/set for `nexcage config get/set`.

use crate::error::ConfigError;
use crate::load::parse_str;
use crate::model::Config;
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The effective value of `key` (defaults included as null). Secrets are
/// returned redacted.
pub fn get_key(config: &Config, key: &str) -> Result<Value, ConfigError> {
    let root =
        serde_json::to_value(config).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
    let mut cur = &root;
    for part in key.split('.') {
        cur = cur
            .get(part)
            .ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    }
    Ok(cur.clone())
}

/// Interpret a command-line value: JSON if it parses (numbers, booleans,
/// arrays), otherwise a plain string.
pub fn parse_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Set `key` to `value` in the file at `path` (created if missing): the
/// result is validated before anything is written, and written atomically
/// (temp file + rename) with mode 0600.
pub fn set_key(path: &Path, key: &str, value: Value) -> Result<Config, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut root: Value = match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            key: String::new(),
            msg: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(io(e)),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::UnknownKey(key.to_string()));
    }
    let mut cur = &mut root;
    for part in &parts[..parts.len() - 1] {
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        cur = obj
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let obj = cur
        .as_object_mut()
        .ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    obj.insert(parts[parts.len() - 1].to_string(), value);

    let text = serde_json::to_string_pretty(&root)
        .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
    let config = parse_str(&text, path)?;

    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{}.tmp.{}", file_name(path), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(config)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".into())
}
