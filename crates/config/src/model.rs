//! The configuration file's shape. Unknown keys are rejected everywhere.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/nexcage/config.json";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/nexcage";
pub const DEFAULT_LXC_PATH: &str = "/var/lib/lxc";
/// Default of `proxmox.gc_grace`, seconds.
pub const DEFAULT_GC_GRACE_SECS: u64 = 60;
/// Largest `proxmox.gc_grace`, seconds (a week).
pub const MAX_GC_GRACE_SECS: u64 = 7 * 24 * 3600;
/// Default of `proxmox.lock_wait`, seconds.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 60;
/// Largest `proxmox.lock_wait`, seconds (a day).
pub const MAX_LOCK_WAIT_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub proxmox: ProxmoxConfig,
    pub storage: StorageConfig,
    pub network: NetworkConfig,
    pub images: ImagesConfig,
    pub api: ApiConfig,
    pub cluster: ClusterConfig,
    pub lxc_path: Option<PathBuf>,
    /// Root disk size in GiB for guests whose size is not otherwise known.
    pub default_disk_size: Option<u64>,
    /// Run guests without a user namespace of their own in Proxmox's
    /// default id map (0..65535 -> 100000..), as `pct create` does: default true.
    pub unprivileged: Option<bool>,
    pub default_backend: Option<Backend>,
    pub routing: Vec<RoutingRule>,
    /// Parallel layer downloads of `image pull` (the user guide's
    /// `config set parallel.processing true`, `parallel.workers 4`).
    pub parallel: ParallelConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelConfig {
    /// false: one layer at a time. Default true.
    pub processing: Option<bool>,
    /// Layers fetched at once when `processing`; default 4.
    pub workers: Option<u32>,
}

impl ParallelConfig {
    /// The number of parallel layer downloads (>= 1) these settings give.
    pub fn jobs(&self) -> usize {
        match self.processing {
            Some(false) => 1,
            _ => self.workers.unwrap_or(4).max(1) as usize,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Native,
    Proxmox,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    #[default]
    Pct,
    Api,
}

/// `proxmox.template_storage` when unset: every node has the `local`
/// directory storage with `vztmpl` content.
pub const DEFAULT_TEMPLATE_STORAGE: &str = "local";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxmoxConfig {
    pub host: Option<String>,
    pub port: Option<u32>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub node: Option<String>,
    pub driver: Option<Driver>,
    /// SHA-256 of the node's TLS certificate, hex with or without colons.
    pub fingerprint: Option<String>,
    /// zfspool storage id (e.g. `local-zfs`).
    pub storage: Option<String>,
    /// Storage id (with `vztmpl` content) that holds the empty template
    /// `pct create` needs; default [`DEFAULT_TEMPLATE_STORAGE`].
    pub template_storage: Option<String>,
    /// File holding an API token: `USER@REALM!TOKENID=SECRET`.
    pub token_file: Option<PathBuf>,
    /// pmxcfs mount where guest configs are `nodes/<node>/lxc/<vmid>.conf`
    /// (default `/etc/pve`; a test node's state dir).
    pub pve_root: Option<PathBuf>,
    /// PVE's per-guest config lock dir (default `/run/lock/lxc`).
    pub lock_dir: Option<PathBuf>,
    /// Seconds a container must have been gone (or a create unfinished)
    /// before `nexcage gc` collects it: default 60, at most a week.
    pub gc_grace: Option<u64>,
    /// Seconds `delete` waits for a guest's Proxmox lock (e.g. `backup`
    /// while vzdump runs) to go before failing: default 60, at most a day.
    pub lock_wait: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    Zfs,
    Dir,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    #[serde(rename = "type")]
    pub kind: Option<StorageType>,
    pub pool: Option<String>,
    pub dataset: Option<String>,
}

impl StorageConfig {
    /// `<pool>[/<dataset>]`, the zfspool's dataset, when ZFS is configured.
    pub fn zfs_parent(&self) -> Option<String> {
        if self.kind == Some(StorageType::Dir) {
            return None;
        }
        let pool = self.pool.as_ref()?;
        Some(match &self.dataset {
            Some(d) if !d.is_empty() => format!("{pool}/{d}"),
            _ => pool.clone(),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub bridge: Option<String>,
    pub vlan: Option<u32>,
    /// Named networks for `--network custom=NAME`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub custom: std::collections::BTreeMap<String, CustomNetwork>,
}

/// `network.custom.NAME`: a bridge and an IPv4 subnet nexcage hands out
/// addresses from (one per container, recorded, released at delete).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CustomNetwork {
    /// Bridge the containers' veths are put on (must exist).
    pub bridge: String,
    /// IPv4 subnet, `A.B.C.D/N`.
    pub subnet: String,
    /// Default route; none when unset.
    pub gateway: Option<String>,
    /// VLAN tag 1..4094 on a VLAN-aware bridge.
    pub vlan: Option<u32>,
    /// Addresses handed out, `FIRST-LAST` inside `subnet`; default: the
    /// whole subnet but its network, broadcast and gateway addresses.
    pub pool: Option<String>,
    pub mtu: Option<u32>,
    /// Written to the containers' /etc/resolv.conf; default: the host's.
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Maximum image cache size in bytes.
    pub cache_size: Option<u64>,
    pub storage_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub host: Option<String>,
    pub port: Option<u32>,
    pub username: Option<String>,
    pub token_name: Option<String>,
    pub token_value: Option<Secret>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub enabled: Option<bool>,
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    #[serde(default)]
    pub id_regex: Option<String>,
    #[serde(default)]
    pub annotation: Option<AnnotationMatch>,
    pub backend: Backend,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnnotationMatch {
    pub key: String,
    pub value: String,
}

impl Config {
    pub fn lxc_path(&self) -> PathBuf {
        self.lxc_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LXC_PATH))
    }

    /// The data dir (image store etc.): `images.storage_path` or the default.
    pub fn data_dir(&self) -> PathBuf {
        self.images
            .storage_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    pub fn default_disk_size_gib(&self) -> u64 {
        self.default_disk_size.unwrap_or(8)
    }

    pub fn unprivileged(&self) -> bool {
        self.unprivileged.unwrap_or(true)
    }

    /// `proxmox.gc_grace` (validated at load), default 60 s.
    pub fn gc_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.proxmox.gc_grace.unwrap_or(DEFAULT_GC_GRACE_SECS))
    }

    /// `proxmox.lock_wait` (validated at load), default 60 s.
    pub fn lock_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.proxmox.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT_SECS))
    }

    pub fn driver(&self) -> Driver {
        self.proxmox.driver.unwrap_or_default()
    }

    /// API host: `proxmox.host`, else `api.host`, else localhost.
    pub fn api_host(&self) -> String {
        self.proxmox
            .host
            .clone()
            .or_else(|| self.api.host.clone())
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    pub fn api_port(&self) -> u16 {
        // Ranges were validated at load time.
        let p = self.proxmox.port.or(self.api.port).unwrap_or(8006);
        u16::try_from(p).unwrap_or(8006)
    }

    /// The pinned certificate fingerprint as 32 bytes, if configured.
    pub fn fingerprint_bytes(&self) -> Option<[u8; 32]> {
        self.proxmox
            .fingerprint
            .as_deref()
            .and_then(|f| crate::validate::parse_fingerprint(f).ok())
    }

    /// `USER@REALM!TOKENID` and its secret from the `api` section, if complete.
    pub fn api_token(&self) -> Option<(String, Secret)> {
        let user = self.api.username.as_ref()?;
        let name = self.api.token_name.as_ref()?;
        let value = self.api.token_value.as_ref()?;
        Some((format!("{user}!{name}"), value.clone()))
    }
}

impl ProxmoxConfig {
    /// `template_storage`, else [`DEFAULT_TEMPLATE_STORAGE`].
    pub fn template_storage(&self) -> &str {
        self.template_storage
            .as_deref()
            .unwrap_or(DEFAULT_TEMPLATE_STORAGE)
    }
}
