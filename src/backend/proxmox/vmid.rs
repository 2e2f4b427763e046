//! VMID claims: concurrent creates on one host never pick the same VMID.
//!
//! `/cluster/nextid` reserves nothing and names the lowest free id
//! (PROXMOX-FACTS section 10); an id is taken only once its guest is
//! registered, which comes after the dataset is made. So before anything
//! is made under a VMID's name, create takes an exclusive `flock` on
//! `/run/nexcage-vmids/<vmid>.lock` (without waiting: a claimed id is
//! skipped) and checks that neither a guest, the dataset nor the LXC dir
//! exists for it. The claim lasts until the guest is registered. Lock files
//! are never removed (removing one would let two creates lock different
//! files of the same name); /run is emptied at boot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nexcage_pve::driver::ControlPlane;

/// Where the claims live.
const CLAIM_DIR: &str = "/run/nexcage-vmids";
/// How many ids past nextid are tried before giving up.
const ATTEMPTS: u32 = 200;

/// An exclusive claim on a VMID, released when dropped.
#[derive(Debug)]
pub struct Claim {
    pub vmid: u32,
    _lock: std::fs::File,
}

/// The first VMID from `/cluster/nextid` on (`next`: its answer, when
/// asked already), not in `skip`, that no other create on this host holds
/// and for which nothing exists: no guest, no dataset named
/// `dataset(vmid)` (`None`: not looked up, as for a clone, whose own `zfs
/// clone` fails "already exists" and then skips the id), no
/// `<lxc_path>/<vmid>`.
pub fn claim(cp: &dyn ControlPlane, next: Option<u32>, dataset: impl Fn(u32) -> Option<String>, lxc_path: &Path, skip: &BTreeSet<u32>) -> Result<Claim> {
    let zfs = nexcage_zfs::Zfs::new();
    let start = match next {
        Some(n) => n,
        None => cp.next_vmid()?,
    };
    for vmid in (start..).take(ATTEMPTS as usize).filter(|v| !skip.contains(v)) {
        let Some(lock) = lock_vmid(vmid)? else {
            tracing::debug!(vmid, "VMID claimed by another create");
            continue;
        };
        // nextid just said `start` is free; ids after it may be taken.
        let guest = vmid != start
            && match cp.config(vmid) {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e.into()),
            };
        let ds = match dataset(vmid) {
            Some(name) => zfs.exists(&name)?,
            None => false,
        };
        if guest || ds || lxc_path.join(vmid.to_string()).exists() {
            tracing::debug!(vmid, guest, dataset = ds, "VMID in use, trying the next");
            continue;
        }
        return Ok(Claim { vmid, _lock: lock });
    }
    bail!("no free VMID in {start}..{} (all claimed or in use)", start + ATTEMPTS)
}

/// The claim lock of `vmid` when no other process holds it (delete holds
/// it while it checks the dataset's owner and destroys it, so that no
/// create on this host claims the id freed meanwhile).
pub fn lock_vmid(vmid: u32) -> Result<Option<std::fs::File>> {
    std::fs::create_dir_all(CLAIM_DIR).with_context(|| format!("create {CLAIM_DIR}"))?;
    try_lock(&PathBuf::from(format!("{CLAIM_DIR}/{vmid}.lock")))
}

/// `flock(LOCK_EX | LOCK_NB)` on `path` (created): `None` when held
/// elsewhere. (Also the clone base's lock, rootfs.rs.)
pub(super) fn try_lock(path: &Path) -> Result<Option<std::fs::File>> {
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).with_context(|| format!("open {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("flock {}", path.display())),
    }
}
