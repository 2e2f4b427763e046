//! Container state: one directory per container under `--root`, holding
//! `state.json` (written atomically) and a `lock` file (flock) that
//! serialises every command on that container.

pub mod id;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use store::{Locked, Store};

/// OCI status values, plus `paused` as runc reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// Which backend owns a container; decided once at create (routing) and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Native,
    Proxmox,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Native => "native",
            BackendKind::Proxmox => "proxmox",
        })
    }
}

/// What nexcage records about a container (its `state.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub backend: BackendKind,
    /// Why the backend was chosen (annotation, sandbox, rule, default).
    pub routed_by: String,
    /// Pid of the container's init (native) or holder (proxmox), once known.
    pub pid: Option<i32>,
    /// Its start time, to detect pid reuse.
    pub pid_start: Option<u64>,
    /// Set once start has been requested; status is derived, not trusted.
    #[serde(default)]
    pub started: bool,
    #[serde(default)]
    pub paused: bool,
    /// Backend-specific data (VMID, dataset, ...).
    #[serde(default)]
    pub backend_data: crate::backend::BackendData,
}
