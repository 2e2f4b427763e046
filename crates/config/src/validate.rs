//! Range and consistency checks run after parsing; every error names its key.

use crate::error::ConfigError;
use crate::model::{Config, StorageType};

/// Parse a SHA-256 fingerprint written as 64 hex digits, with or without
/// colons between byte pairs.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "must be a SHA-256 fingerprint: 64 hex digits, optionally colon-separated".into(),
        );
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn port(key: &str, v: Option<u32>) -> Result<(), ConfigError> {
    match v {
        Some(p) if !(1..=65535).contains(&p) => Err(ConfigError::invalid(key, "must be 1..65535")),
        _ => Ok(()),
    }
}

fn absolute(key: &str, v: &Option<std::path::PathBuf>) -> Result<(), ConfigError> {
    match v {
        Some(p) if !p.is_absolute() => Err(ConfigError::invalid(key, "must be an absolute path")),
        _ => Ok(()),
    }
}

fn non_empty(key: &str, v: &Option<String>) -> Result<(), ConfigError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(ConfigError::invalid(key, "must not be empty")),
        _ => Ok(()),
    }
}

fn matches(key: &str, v: &Option<String>, re: &str, what: &str) -> Result<(), ConfigError> {
    if let Some(s) = v {
        // regex-lite: ASCII `\w`/`\s` (node, storage and bridge names are
        // ASCII) and a compile in microseconds (every command validates
        // its config).
        let re = regex_lite::Regex::new(re).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        if !re.is_match(s) {
            return Err(ConfigError::invalid(key, format!("'{s}' is not {what}")));
        }
    }
    Ok(())
}

const NODE_RE: &str = r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$";
const STORAGE_RE: &str = r"^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$";
const USER_RE: &str = r"^[^\s:/@!]+@[A-Za-z][A-Za-z0-9.\-_]+$";
const BRIDGE_RE: &str = r"^[-_.\w\d]+$";

pub fn validate(c: &Config) -> Result<(), ConfigError> {
    let p = &c.proxmox;
    non_empty("proxmox.host", &p.host)?;
    port("proxmox.port", p.port)?;
    matches(
        "proxmox.username",
        &p.username,
        USER_RE,
        "a Proxmox user (USER@REALM)",
    )?;
    matches("proxmox.node", &p.node, NODE_RE, "a valid node name")?;
    matches(
        "proxmox.storage",
        &p.storage,
        STORAGE_RE,
        "a valid storage id",
    )?;
    matches(
        "proxmox.template_storage",
        &p.template_storage,
        STORAGE_RE,
        "a valid storage id",
    )?;
    if let Some(f) = &p.fingerprint {
        parse_fingerprint(f).map_err(|m| ConfigError::invalid("proxmox.fingerprint", m))?;
    }
    if p.gc_grace.is_some_and(|g| g > crate::model::MAX_GC_GRACE_SECS) {
        return Err(ConfigError::invalid(
            "proxmox.gc_grace",
            format!("must be 0..{} seconds", crate::model::MAX_GC_GRACE_SECS),
        ));
    }
    if p.lock_wait.is_some_and(|w| w > crate::model::MAX_LOCK_WAIT_SECS) {
        return Err(ConfigError::invalid(
            "proxmox.lock_wait",
            format!("must be 0..{} seconds", crate::model::MAX_LOCK_WAIT_SECS),
        ));
    }
    if p.password.is_some() && p.username.is_none() {
        return Err(ConfigError::invalid(
            "proxmox.password",
            "needs proxmox.username",
        ));
    }

    let s = &c.storage;
    if s.kind == Some(StorageType::Zfs) && s.pool.is_none() && s.dataset.is_none() {
        return Err(ConfigError::invalid(
            "storage.pool",
            "required when storage.type is \"zfs\"",
        ));
    }
    non_empty("storage.pool", &s.pool)?;
    non_empty("storage.dataset", &s.dataset)?;

    matches(
        "network.bridge",
        &c.network.bridge,
        BRIDGE_RE,
        "a valid bridge name",
    )?;
    if let Some(v) = c.network.vlan {
        if !(1..=4094).contains(&v) {
            return Err(ConfigError::invalid("network.vlan", "must be 1..4094"));
        }
    }
    for (name, n) in &c.network.custom {
        let key = |k: &str| format!("network.custom.{name}.{k}");
        matches(&key("bridge"), &Some(n.bridge.clone()), BRIDGE_RE, "a valid bridge name (required)")?;
        if n.subnet.is_empty() {
            return Err(ConfigError::invalid(&key("subnet"), "required (A.B.C.D/N)"));
        }
        if n.vlan.is_some_and(|v| !(1..=4094).contains(&v)) {
            return Err(ConfigError::invalid(&key("vlan"), "must be 1..4094"));
        }
    }

    absolute("images.storage_path", &c.images.storage_path)?;

    non_empty("api.host", &c.api.host)?;
    port("api.port", c.api.port)?;
    matches(
        "api.username",
        &c.api.username,
        USER_RE,
        "a Proxmox user (USER@REALM)",
    )?;
    matches(
        "api.token_name",
        &c.api.token_name,
        r"^[A-Za-z][A-Za-z0-9.\-_]+$",
        "a valid token id",
    )?;

    for (i, n) in c.cluster.nodes.iter().enumerate() {
        matches(
            &format!("cluster.nodes[{i}]"),
            &Some(n.clone()),
            NODE_RE,
            "a valid node name",
        )?;
    }

    absolute("lxc_path", &c.lxc_path)?;
    absolute("proxmox.pve_root", &c.proxmox.pve_root)?;
    absolute("proxmox.lock_dir", &c.proxmox.lock_dir)?;
    if let Some(d) = c.default_disk_size {
        if !(1..=131072).contains(&d) {
            return Err(ConfigError::invalid(
                "default_disk_size",
                "must be 1..131072 (GiB)",
            ));
        }
    }

    for (i, r) in c.routing.iter().enumerate() {
        let key = format!("routing[{i}]");
        match (&r.id_regex, &r.annotation) {
            (Some(re), None) => {
                regex::Regex::new(re)
                    .map_err(|e| ConfigError::invalid(&format!("{key}.id_regex"), e.to_string()))?;
            }
            (None, Some(a)) if a.key.is_empty() => {
                return Err(ConfigError::invalid(
                    &format!("{key}.annotation.key"),
                    "must not be empty",
                ))
            }
            (None, Some(_)) => {}
            _ => {
                return Err(ConfigError::invalid(
                    &key,
                    "needs exactly one of id_regex or annotation",
                ))
            }
        }
    }
    Ok(())
}
