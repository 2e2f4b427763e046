use std::collections::BTreeMap;

/// A control-plane failure. Every variant names the call that failed
/// (`POST /nodes/pve/lxc`, `pct create 100`, ...). Secrets never appear.
#[derive(Debug, thiserror::Error)]
pub enum PveError {
    /// Proxmox answered with an HTTP error (or the CLI reported one).
    #[error("proxmox api {call}: {status} {}{}", fmt_message(.message, .errors), fmt_errors(.errors))]
    Api {
        call: String,
        status: u16,
        message: String,
        errors: BTreeMap<String, String>,
    },
    #[error(
        "proxmox api {call}: {status} authentication failed (check the API token or user/password)"
    )]
    Auth { call: String, status: u16 },
    #[error("proxmox api {call}: TLS: {msg}")]
    Tls { call: String, msg: String },
    #[error("proxmox api {call}: {msg}")]
    Transport { call: String, msg: String },
    #[error("proxmox task {upid} of {call} failed: {exitstatus}{}", fmt_log(.log_tail))]
    Task {
        call: String,
        upid: String,
        exitstatus: String,
        log_tail: Vec<String>,
    },
    #[error("{call}: exit status {code}: {stderr}")]
    Cli {
        call: String,
        code: i32,
        stderr: String,
    },
    #[error("{call}: cannot run {program}: {source}")]
    Spawn {
        call: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{call}: CT {vmid} already exists")]
    AlreadyExists { call: String, vmid: u32 },
    #[error("{call}: CT {vmid} does not exist")]
    NotFound { call: String, vmid: u32 },
    #[error("{call}: unexpected answer: {msg}")]
    Parse { call: String, msg: String },
    #[error("Proxmox VE {version} is not supported: nexcage needs pve-manager {minimum} or newer")]
    UnsupportedVersion { version: String, minimum: String },
    #[error("{call}: not supported by the {driver} driver: {why}")]
    Unsupported {
        call: String,
        driver: &'static str,
        why: String,
    },
    #[error("{call}: {source}")]
    Io {
        call: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("could not allocate a VMID after {attempts} attempts: {last}")]
    VmidExhausted { attempts: u32, last: String },
}

/// "Parameter verification failed." reads better without its dot before the list.
fn fmt_message(m: &str, e: &BTreeMap<String, String>) -> String {
    if e.is_empty() {
        m.to_string()
    } else {
        m.trim_end_matches('.').to_string()
    }
}

fn fmt_errors(e: &BTreeMap<String, String>) -> String {
    if e.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = e.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(": {}", parts.join("; "))
}

fn fmt_log(l: &[String]) -> String {
    if l.is_empty() {
        String::new()
    } else {
        format!(" (task log tail: {})", l.join(" | "))
    }
}

impl PveError {
    /// "CT 100 already exists" (create race) in any of its shapes.
    pub fn is_already_exists(&self) -> bool {
        match self {
            PveError::AlreadyExists { .. } => true,
            PveError::Api {
                message, errors, ..
            } => {
                message.contains("already exists")
                    || errors.values().any(|v| v.contains("already exists"))
            }
            PveError::Cli { stderr, .. } => stderr.contains("already exists"),
            PveError::Task { exitstatus, .. } => exitstatus.contains("already exists"),
            _ => false,
        }
    }

    /// "does not exist" in any of its shapes.
    pub fn is_not_found(&self) -> bool {
        match self {
            PveError::NotFound { .. } => true,
            PveError::Api { message, .. } => message.contains("does not exist"),
            PveError::Cli { stderr, .. } => stderr.contains("does not exist"),
            PveError::Task { exitstatus, .. } => exitstatus.contains("does not exist"),
            _ => false,
        }
    }
}
