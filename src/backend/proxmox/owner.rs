//! Ownership: which guest, dataset and LXC dir a container made.
//!
//! VMIDs are reused (`/cluster/nextid` returns the lowest free id,
//! PROXMOX-FACTS section 10), so a VMID alone never says a guest is ours.
//! Create stamps one owner record (OCI id, absolute state root, host
//! identity, creation time) on everything it makes:
//!
//! * the guest's description, line `nexcage-owner: <json>` (the guest also
//!   carries the `nexcage` tag and `protection: 1`);
//! * the rootfs dataset, ZFS user property `org.nexcage:owner`, set by the
//!   same `zfs create`/`zfs clone`;
//! * the LXC dir, file `nexcage-owner`, written before anything else in it.
//!
//! delete, gc and create's undo compare the record found with the
//! container's own (from its create journal) and touch only what matches.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The description line's prefix.
const DESCRIPTION_PREFIX: &str = "nexcage-owner: ";
/// The ZFS user property on the rootfs dataset.
pub const ZFS_PROPERTY: &str = "org.nexcage:owner";
/// The marker file in the LXC dir.
const LXC_DIR_FILE: &str = "nexcage-owner";

/// Who made a guest: equal records mean the same create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The OCI container id.
    pub id: String,
    /// The absolute state root (`--root`) the container lives in.
    pub root: PathBuf,
    /// The host: /etc/machine-id, else the hostname.
    pub host: String,
    /// Seconds since the epoch at create.
    pub created: u64,
}

/// What a check found where a record was expected.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It carries this container's record.
    Ours,
    /// Nothing there (never made, or already removed).
    Gone,
    /// Something else is there: never touched. The text says why.
    Foreign(String),
}

impl Owner {
    /// The record for container `id` in state root `root`, made now.
    pub fn new(id: &str, root: &Path) -> Owner {
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Owner { id: id.to_string(), root: root.to_path_buf(), host: host_identity(), created }
    }

    /// Compact JSON (one line, ASCII-safe for Proxmox's description encoding).
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The description line (no newline).
    pub fn description_line(&self) -> String {
        format!("{DESCRIPTION_PREFIX}{}", self.json())
    }

    /// The record in a guest's description, if it has one.
    pub fn from_description(desc: &str) -> Option<Owner> {
        desc.lines().find_map(|l| l.strip_prefix(DESCRIPTION_PREFIX)).and_then(|j| serde_json::from_str(j).ok())
    }

    /// Seconds since create (0 if the clock went back).
    pub fn age(&self) -> std::time::Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::time::Duration::from_secs(now.saturating_sub(self.created))
    }

    fn compare(&self, found: Option<Owner>, what: &str) -> Verdict {
        match found {
            Some(o) if o == *self => Verdict::Ours,
            Some(o) => Verdict::Foreign(format!("{what} belongs to container {:?} in {} on host {} (created {})", o.id, o.root.display(), o.host, o.created)),
            None => Verdict::Foreign(format!("{what} has no nexcage owner record")),
        }
    }

    /// The guest `vmid`'s record against this one.
    /// With the config it read (`None` when the guest is gone), so a
    /// caller needs no second GET of it.
    pub fn check_guest(&self, cp: &dyn nexcage_pve::driver::ControlPlane, vmid: u32) -> anyhow::Result<(Verdict, Option<nexcage_pve::driver::GuestConfig>)> {
        match cp.config(vmid) {
            Ok(c) => Ok((self.compare(c.keys.get("description").and_then(|d| Owner::from_description(d)), &format!("guest {vmid}")), Some(c))),
            Err(e) if e.is_not_found() => Ok((Verdict::Gone, None)),
            Err(e) => Err(e.into()),
        }
    }

    /// The dataset's `org.nexcage:owner` against this one.
    pub fn check_dataset(&self, zfs: &nexcage_zfs::Zfs, name: &str) -> anyhow::Result<Verdict> {
        match zfs.get_user_prop(name, ZFS_PROPERTY) {
            Ok(v) => Ok(self.compare(v.and_then(|j| serde_json::from_str(&j).ok()), &format!("dataset {name}"))),
            Err(e) if e.is_not_found() => Ok(Verdict::Gone),
            Err(e) => Err(e.into()),
        }
    }

    /// The LXC dir's marker against this one. An empty dir without marker
    /// counts as ours (create died between mkdir and the marker).
    pub fn check_lxc_dir(&self, dir: &Path) -> Verdict {
        match std::fs::read_to_string(dir.join(LXC_DIR_FILE)) {
            Ok(t) => self.compare(serde_json::from_str(&t).ok(), &format!("LXC dir {}", dir.display())),
            Err(_) if !dir.exists() => Verdict::Gone,
            Err(_) if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) => Verdict::Ours,
            Err(_) => self.compare(None, &format!("LXC dir {}", dir.display())),
        }
    }

    /// Makes `dir` (which must not exist yet) and writes the marker into it.
    pub fn make_lxc_dir(&self, dir: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/"))).with_context(|| format!("create {}", dir.display()))?;
        std::fs::create_dir(dir).with_context(|| format!("create {} (exists: not nexcage's to reuse)", dir.display()))?;
        std::fs::write(dir.join(LXC_DIR_FILE), self.json()).with_context(|| format!("write {}", dir.join(LXC_DIR_FILE).display()))
    }
}

/// This host's identity: /etc/machine-id, else the kernel's hostname.
pub fn host_identity() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    read("/etc/machine-id").or_else(|| read("/proc/sys/kernel/hostname")).unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_round_trip_and_mismatch() {
        let o = Owner::new("a", Path::new("/run/nexcage"));
        let desc = format!("nexcage oci-id: a\n{}\nk=v\n", o.description_line());
        assert_eq!(Owner::from_description(&desc), Some(o.clone()));
        assert_eq!(Owner::from_description("nexcage oci-id: a\n"), None);
        let mut other = o.clone();
        other.root = "/run/containerd/runc/k8s.io".into();
        assert_eq!(o.compare(Some(o.clone()), "guest 1"), Verdict::Ours);
        assert!(matches!(o.compare(Some(other), "guest 1"), Verdict::Foreign(w) if w.contains("/run/containerd/runc/k8s.io")));
        assert!(matches!(o.compare(None, "guest 1"), Verdict::Foreign(w) if w.contains("no nexcage owner record")));
    }

    #[test]
    fn lxc_dir_marker() {
        let d = std::env::temp_dir().join(format!("nx-owner-{}", std::process::id()));
        let o = Owner::new("a", Path::new("/r"));
        assert_eq!(o.check_lxc_dir(&d), Verdict::Gone);
        o.make_lxc_dir(&d).unwrap();
        assert_eq!(o.check_lxc_dir(&d), Verdict::Ours);
        assert!(o.make_lxc_dir(&d).is_err(), "an existing dir is never reused");
        assert!(matches!(Owner::new("b", Path::new("/r")).check_lxc_dir(&d), Verdict::Foreign(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
