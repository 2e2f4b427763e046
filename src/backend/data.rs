//! What a backend keeps in the container's record (`Record.backend_data`).

use serde::{Deserialize, Serialize};

/// How the Proxmox backend provides the guest's rootfs (annotation
/// `org.nexcage.rootfs-strategy`; written as `copy`, `clone`, `bind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsStrategy {
    /// The bundle's rootfs copied into a fresh ZFS subvol.
    Copy,
    /// A linked clone of a base snapshot (O(1)).
    Clone,
    /// The bundle's rootfs used in place, no ZFS.
    Bind,
}

impl RootfsStrategy {
    /// The annotation's (and the record's) word for it.
    pub fn name(self) -> &'static str {
        match self {
            RootfsStrategy::Copy => "copy",
            RootfsStrategy::Clone => "clone",
            RootfsStrategy::Bind => "bind",
        }
    }
}

/// Per-backend data of a created container. In the state file it is `null`
/// for native and an object with `vmid`, `dataset` (null for `bind`) and
/// `strategy` for Proxmox (older records hold the whole create journal
/// there; its other keys are ignored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BackendData {
    Proxmox {
        /// The guest's VMID.
        vmid: u32,
        /// The rootfs ZFS dataset (`copy`/`clone` strategies).
        #[serde(default)]
        dataset: Option<String>,
        strategy: RootfsStrategy,
    },
    #[default]
    Native,
}

impl BackendData {
    pub fn vmid(&self) -> Option<u32> {
        match self {
            BackendData::Proxmox { vmid, .. } => Some(*vmid),
            BackendData::Native => None,
        }
    }

    pub fn dataset(&self) -> Option<&str> {
        match self {
            BackendData::Proxmox { dataset, .. } => dataset.as_deref(),
            BackendData::Native => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_todays_and_older_records() {
        let native: BackendData = serde_json::from_value(json!(null)).unwrap();
        assert_eq!(native, BackendData::Native);
        assert_eq!(serde_json::to_value(&native).unwrap(), json!(null));
        // A record written before BackendData: the whole create journal.
        let old = json!({"step": "done", "vmid": 104, "dataset": "tank/subvol-104-disk-0", "strategy": "copy",
                         "rootfs": "/tank/subvol-104-disk-0", "guest": true, "holder": 77, "args": ["sh"]});
        let px: BackendData = serde_json::from_value(old).unwrap();
        assert_eq!(px.vmid(), Some(104));
        assert_eq!(px.dataset(), Some("tank/subvol-104-disk-0"));
        let v = serde_json::to_value(&px).unwrap();
        assert_eq!(v, json!({"vmid": 104, "dataset": "tank/subvol-104-disk-0", "strategy": "copy"}));
        let bind: BackendData = serde_json::from_value(json!({"vmid": 7, "dataset": null, "strategy": "bind"})).unwrap();
        assert_eq!((bind.vmid(), bind.dataset()), (Some(7), None));
    }
}
