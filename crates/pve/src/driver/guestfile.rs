//! Editing a guest's config file on the node itself, the way PVE's own
//! tools do: `/etc/pve/nodes/<node>/lxc/<vmid>.conf` (PROXMOX-FACTS §1),
//! read, changed and written back (temp file + rename) while holding PVE's
//! per-guest config lock `/run/lock/lxc/pve-config-<vmid>.lock`.
//!
//! Needed for what the API cannot carry (raw `lxc.*` keys, PROXMOX-FACTS
//! §4, §10): only root on the node can do this, with either driver.

use super::PveError;
use crate::conffile::{self, ConfigFile};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a node keeps guest configs and their locks.
#[derive(Debug, Clone)]
pub struct GuestFiles {
    pub node: String,
    /// pmxcfs mount (default `/etc/pve`).
    pub pve_root: PathBuf,
    /// PVE's config lock dir (default `/run/lock/lxc`).
    pub lock_dir: PathBuf,
}

impl GuestFiles {
    /// A node's defaults: `/etc/pve`, `/run/lock/lxc`.
    pub fn new(node: &str) -> Self {
        GuestFiles {
            node: node.into(),
            pve_root: "/etc/pve".into(),
            lock_dir: "/run/lock/lxc".into(),
        }
    }

    /// `<pve_root>/nodes/<node>/lxc/<vmid>.conf`.
    pub fn conf_path(&self, vmid: u32) -> PathBuf {
        self.pve_root
            .join(format!("nodes/{}/lxc/{vmid}.conf", self.node))
    }

    /// Applies `change` to the guest's config under the config lock.
    /// Errors: [`PveError::Io`] naming the file (missing guest, lock or
    /// write failure); the file is unchanged then.
    pub fn edit(&self, vmid: u32, change: impl FnOnce(&mut ConfigFile)) -> Result<(), PveError> {
        let path = self.conf_path(vmid);
        let call = format!("write {}", path.display());
        let io = |source| PveError::Io {
            call: call.clone(),
            source,
        };
        std::fs::create_dir_all(&self.lock_dir).map_err(io)?;
        let lock =
            File::create(self.lock_dir.join(format!("pve-config-{vmid}.lock"))).map_err(io)?;
        lock.lock().map_err(io)?;
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let (mut cfg, _) = conffile::parse(&text);
        change(&mut cfg);
        write_replacing(&path, conffile::write(&cfg).as_bytes()).map_err(io)
    }
}

/// Writes `path` whole or not at all: `<path>.tmp.<pid>`, renamed over
/// `path` (readers never see half a file). Not synced, as Proxmox writes
/// these files itself (pve-common `PVE::Tools::file_set_contents`: temp
/// file, close, rename; on a node /etc/pve is pmxcfs, whose writes are
/// the cluster database's).
pub(crate) fn write_replacing(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(name);
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_under_the_lock_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("guestfile-{}", std::process::id()));
        let gf = GuestFiles {
            node: "pve".into(),
            pve_root: dir.clone(),
            lock_dir: dir.join("lock"),
        };
        let conf = gf.conf_path(100);
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, "arch: amd64\nmemory: 512\n").unwrap();
        gf.edit(100, |c| {
            c.main
                .lxc
                .push(("lxc.include".into(), "/x/nexcage.conf".into()))
        })
        .unwrap();
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_eq!(
            text,
            "arch: amd64\nmemory: 512\nlxc.include: /x/nexcage.conf\n"
        );
        assert!(dir.join("lock/pve-config-100.lock").exists());
        assert!(matches!(gf.edit(101, |_| {}), Err(PveError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
