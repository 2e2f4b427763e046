//! The [`ControlPlane`] trait and the helpers built on it.

pub mod api;
mod config;
mod error;
pub mod guestfile;
pub mod pct;
pub mod privileges;
mod tcp;
mod tls;
mod upid;
pub mod versions;

pub use config::{auth as auth_from_config, from_config, guest_files, node_name};
pub use error::PveError;
pub use privileges::{lacking as lacking_privileges, Need, Setup};
pub use upid::Upid;
pub use versions::{NodeVersions, TemplateFormat, MIN_PVE_VERSION};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// GET /version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveVersion {
    /// e.g. `9.1.2`.
    pub version: String,
    pub release: String,
    pub repoid: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStatus {
    Running,
    Stopped,
    Unknown,
}

/// One row of the guest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSummary {
    pub vmid: u32,
    pub status: GuestStatus,
    pub name: Option<String>,
    pub lock: Option<String>,
    pub tags: Option<String>,
}

/// A guest's config as Proxmox reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    /// Plain keys (description decoded, env NUL-joined).
    pub keys: BTreeMap<String, String>,
    /// Raw `lxc.*` entries in file order.
    pub lxc: Vec<(String, String)>,
    pub digest: Option<String>,
}

/// What `create` registers.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Required by Proxmox (`pct create <vmid> <ostemplate>`), e.g.
    /// `local:vztmpl/nexcage-empty.tar`.
    pub ostemplate: String,
    /// Keys as from [`crate::mapping::PveConfig::api_params`].
    pub params: BTreeMap<String, String>,
    /// Raw `lxc.*` keys to persist in the guest config. Only a driver
    /// running on the node can write them (the API has no such parameter);
    /// the API driver refuses a non-empty list, so callers that use it put
    /// these keys in the LXC config they render themselves.
    pub raw_lxc: Vec<(String, String)>,
    /// A line of `params["description"]` that only this create writes
    /// (nexcage's owner record). After a failed create the driver removes
    /// a half-created guest (`lock: create`) at the VMID only when its
    /// description has this line: VMIDs are shared with every other
    /// creator on the cluster (PROXMOX-FACTS section 10), so a guest
    /// someone else is creating under the same id is never touched.
    /// `None`: nothing is ever removed.
    pub owner_line: Option<String>,
}

/// The VMID in an answer of `GET /cluster/nextid`: the schema says
/// integer; Perl may send it as a string. `None` if it is neither or does
/// not fit a u32.
fn vmid_of(v: &serde_json::Value) -> Option<u32> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .and_then(|i| u32::try_from(i).ok())
}

/// The volume ids in an answer of `GET …/storage/{storage}/content`
/// (an array of objects with `volid`).
fn volids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("volid").and_then(serde_json::Value::as_str))
        .map(String::from)
        .collect()
}

/// A volume to allocate (`pvesm alloc`; Proxmox API
/// `POST /nodes/{node}/storage/{storage}/content`, `format=subvol`).
#[derive(Debug, Clone, Copy)]
pub struct NewVolume<'a> {
    /// Storage id, e.g. `local-zfs`.
    pub storage: &'a str,
    /// The guest that owns the volume.
    pub vmid: u32,
    /// Volume name, e.g. `subvol-100-disk-1`.
    pub filename: &'a str,
    /// Size with a unit suffix as Proxmox takes it, e.g. `1G`.
    pub size: &'a str,
}

/// Proxmox's control plane, as nexcage needs it. All calls are blocking.
pub trait ControlPlane: Send + Sync {
    /// The node this driver manages.
    fn node(&self) -> &str;
    /// GET /version.
    fn version(&self) -> Result<PveVersion, PveError>;
    /// GET /cluster/nextid: a free VMID (reserves nothing).
    fn next_vmid(&self) -> Result<u32, PveError>;
    /// POST /nodes/{node}/lxc (waits for the task). A failed create leaves
    /// nothing registered.
    fn create(&self, vmid: u32, req: &CreateRequest) -> Result<(), PveError>;
    /// PUT /nodes/{node}/lxc/{vmid}/config.
    fn set_config(
        &self,
        vmid: u32,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), PveError>;
    /// GET /nodes/{node}/lxc/{vmid}/config.
    fn config(&self, vmid: u32) -> Result<GuestConfig, PveError>;
    /// GET /nodes/{node}/lxc/{vmid}/status/current.
    fn status(&self, vmid: u32) -> Result<GuestStatus, PveError>;
    /// GET /nodes/{node}/lxc.
    fn list(&self) -> Result<Vec<GuestSummary>, PveError>;
    /// POST .../status/start (waits for the task).
    fn start(&self, vmid: u32) -> Result<(), PveError>;
    /// POST .../status/stop (waits for the task).
    fn stop(&self, vmid: u32) -> Result<(), PveError>;
    /// DELETE /nodes/{node}/lxc/{vmid} (waits for the task).
    fn destroy(&self, vmid: u32, purge: bool) -> Result<(), PveError>;
    /// POST /nodes/{node}/storage/{storage}/content: returns the volume id.
    fn alloc_volume(&self, volume: &NewVolume<'_>) -> Result<String, PveError>;
    /// DELETE /nodes/{node}/storage/{storage}/content/{volume}.
    fn free_volume(&self, storage: &str, volid: &str) -> Result<(), PveError>;
    /// The node's package versions. Default: only pve-manager's (GET
    /// /version); the pct driver reads `pveversion -v`.
    fn node_versions(&self) -> Result<NodeVersions, PveError> {
        self.version()
            .map(|v| NodeVersions::from_manager(&v.version))
    }
    /// GET /nodes/{node}/storage/{storage}/content?content=vztmpl: the
    /// container templates' volume ids (`local:vztmpl/NAME`).
    fn templates(&self, storage: &str) -> Result<Vec<String>, PveError>;
    /// Puts container template `filename` (its bytes `data`) on `storage`
    /// and returns its volume id. API: POST
    /// /nodes/{node}/storage/{storage}/upload (`content=vztmpl`, needs
    /// `Datastore.AllocateTemplate` on the storage); pct: written as root
    /// at the path `pvesm path` names.
    fn upload_template(
        &self,
        storage: &str,
        filename: &str,
        data: &[u8],
    ) -> Result<String, PveError>;
    /// The privileges this driver's user holds on ACL `path` (GET
    /// /access/permissions?path=P). `None`: it acts as `root@pam`, which
    /// holds every privilege (the pct driver, on the node).
    fn privileges(
        &self,
        path: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, PveError> {
        let _ = path;
        Ok(None)
    }
    /// Control-plane calls made so far (HTTP requests or processes spawned).
    fn calls(&self) -> u64;
}

/// Allocate a VMID and create the guest with it: nextid + create, retried
/// when another creator won the race ("already exists").
pub fn allocate_and_create(cp: &dyn ControlPlane, req: &CreateRequest) -> Result<u32, PveError> {
    const ATTEMPTS: u32 = 200;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let vmid = cp.next_vmid()?;
        match cp.create(vmid, req) {
            Ok(()) => return Ok(vmid),
            Err(e) if e.is_already_exists() => {
                tracing::debug!(vmid, attempt, "VMID taken concurrently, retrying");
                last = e.to_string();
                // Spread concurrent retries a little.
                std::thread::sleep(std::time::Duration::from_millis(
                    5 + u64::from(attempt % 8) * 3,
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Err(PveError::VmidExhausted {
        attempts: ATTEMPTS,
        last,
    })
}

/// Counter shared by the drivers.
#[derive(Debug, Default)]
pub(crate) struct CallCounter(AtomicU64);

impl CallCounter {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
