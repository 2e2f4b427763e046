//! Rootfs strategies: `copy` (bundle rootfs copied into a fresh subvol),
//! `clone` (linked clone of a base snapshot, O(1)), `bind` (the bundle's
//! rootfs used in place, no ZFS). Chosen by the annotation
//! `org.nexcage.rootfs-strategy`, else `copy` when `storage.type` is zfs
//! (or a pool is configured), else `bind`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nexcage_zfs::{UserProp, Zfs, BASE_SNAPSHOT};

use crate::backend::RootfsStrategy;

pub const STRATEGY_ANNOTATION: &str = "org.nexcage.rootfs-strategy";
/// `clone` source: a full snapshot name (`pool/basevol-x-disk-0@__base__`).
pub const CLONE_ANNOTATION: &str = "org.nexcage.clone-from";
pub const DISK_ANNOTATION: &str = "org.nexcage.disk-size";

pub fn choose(cfg: &nexcage_config::Config, ann: &BTreeMap<String, String>) -> Result<RootfsStrategy> {
    match ann.get(STRATEGY_ANNOTATION).map(String::as_str) {
        Some("copy") => Ok(RootfsStrategy::Copy),
        Some("clone") => Ok(RootfsStrategy::Clone),
        Some("bind") => Ok(RootfsStrategy::Bind),
        Some(o) => bail!("annotation {STRATEGY_ANNOTATION}: unknown strategy {o:?} (copy, clone or bind)"),
        None if cfg.storage.zfs_parent().is_some() => Ok(RootfsStrategy::Copy),
        None => Ok(RootfsStrategy::Bind),
    }
}

/// Disk size in bytes: annotation (`8G`, `512M`, bytes) or `default_disk_size` GiB.
pub fn disk_bytes(cfg: &nexcage_config::Config, ann: &BTreeMap<String, String>) -> Result<u64> {
    match ann.get(DISK_ANNOTATION) {
        Some(s) => nexcage_zfs::parse_size(s)
            .filter(|b| *b > 0)
            .with_context(|| format!("annotation {DISK_ANNOTATION}: bad size {s:?} (e.g. 8G)")),
        None => Ok(cfg.default_disk_size_gib() << 30),
    }
}

/// What [`provision`] made.
pub enum Made {
    /// A filled dataset (copy), mounted here.
    Mounted(PathBuf),
    /// A clone, mounted by `zfs clone`; its mountpoint is the caller's to
    /// ask ([`Zfs::mountpoint`]), while it does something else (create
    /// registers the guest meanwhile).
    Cloned,
}

/// Creates the dataset `name` for the strategy (and fills a copy).
/// `shift`: the guest is unprivileged, its files must be owned by ids + shift.
/// `owner` is set by the same `zfs create`/`zfs clone`.
#[allow(clippy::too_many_arguments)]
pub fn provision(zfs: &Zfs, strategy: RootfsStrategy, name: &str, src: &Path, quota: u64, ann: &BTreeMap<String, String>, parent: &str, shift: Option<u32>, owner: UserProp<'_>) -> Result<Made> {
    match strategy {
        RootfsStrategy::Copy => {
            // create_subvol warns about properties the implementation refused.
            zfs.create_subvol_with(name, Some(quota), &[owner])?;
            let mp = zfs.mountpoint(name)?;
            fill(src, &mp, shift)?;
            Ok(Made::Mounted(mp))
        }
        RootfsStrategy::Clone => {
            let snap = match ann.get(CLONE_ANNOTATION) {
                Some(s) => s.clone(),
                None => base_snapshot(parent, src, shift),
            };
            // The base exists but for the first clone of a source: clone
            // first, make the base only when zfs says it does not exist
            // (one `zfs list` less per create).
            match zfs.clone_with(&snap, name, Some(quota), &[owner]) {
                Err(e) if e.is_not_found() && !ann.contains_key(CLONE_ANNOTATION) => {
                    ensure_base(zfs, &snap, src, shift)?;
                    zfs.clone_with(&snap, name, Some(quota), &[owner])?;
                }
                r => r?,
            }
            // The mountpoint is asked of zfs, not read from the mount table
            // right after the clone: with that shortcut, 16 parallel clone
            // `run`s wedged zfs-fuse (guests' first requests on the new
            // filesystem never answered; crates/zfs `Zfs::mountpoint`).
            Ok(Made::Cloned)
        }
        RootfsStrategy::Bind => bail!("bind strategy has no dataset"),
    }
}

/// Copies `src` into `dst`, owners shifted for an unprivileged guest.
fn fill(src: &Path, dst: &Path, shift: Option<u32>) -> Result<()> {
    nexcage_zfs::copy_tree(src, dst)?;
    if let Some(base) = shift {
        nexcage_zfs::shift_owners(dst, base, nexcage_pve::mapping::UNPRIVILEGED_ID_COUNT)?;
    }
    Ok(())
}

/// The base snapshot for `src`: `<parent>/basevol-<key>-disk-0@__base__`,
/// keyed by the source path (and the id shift: `u` for Proxmox's map,
/// `u<base>` for a spec's own).
fn base_snapshot(parent: &str, src: &Path, shift: Option<u32>) -> String {
    let key = fnv(&src.display().to_string());
    let suffix = match shift {
        None => String::new(),
        Some(nexcage_pve::mapping::UNPRIVILEGED_ID_BASE) => "u".into(),
        Some(b) => format!("u{b}"),
    };
    let base = nexcage_zfs::basevol_name(parent, &format!("{key:016x}{suffix}"));
    format!("{base}@{BASE_SNAPSHOT}")
}

/// Where the base locks live (as the VMID claims, vmid.rs: lock files are
/// never removed, /run is emptied at boot).
const BASE_LOCK_DIR: &str = "/run/nexcage-bases";
/// How long a create waits for another one making the same base (a copy
/// of the bundle's rootfs: seconds for a large image on zfs-fuse).
const BASE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Makes the base snapshot `snap` ([`base_snapshot`]) of `src` (copy +
/// snapshot), unless it exists, under an exclusive flock on
/// `/run/nexcage-bases/<base>.lock`: without it, parallel first clones of
/// one source each found no base, and each destroyed the half-made base of
/// another as a crash leftover (15 of 16 failed, and zfs-fuse wedged).
/// Errors: the lock not had within [`BASE_LOCK_WAIT`], or zfs's/the copy's.
fn ensure_base(zfs: &Zfs, snap: &str, src: &Path, shift: Option<u32>) -> Result<()> {
    let base = snap.split_once('@').map_or(snap, |(b, _)| b);
    let _lock = lock_base(base)?;
    if zfs.exists(snap)? {
        return Ok(());
    }
    tracing::info!(%base, "creating clone base from {}", src.display());
    // A half-made base (crash before the snapshot) is redone.
    zfs.destroy(base, true)?;
    zfs.create_subvol(base, None)?;
    let mp = zfs.mountpoint(base)?;
    fill(src, &mp, shift)?;
    zfs.snapshot(snap)?;
    Ok(())
}

/// The exclusive lock on `base`'s lock file, waited for up to
/// [`BASE_LOCK_WAIT`] (released when the file closes).
fn lock_base(base: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(BASE_LOCK_DIR).with_context(|| format!("create {BASE_LOCK_DIR}"))?;
    let path = Path::new(BASE_LOCK_DIR).join(format!("{}.lock", base.replace('/', "%")));
    let deadline = std::time::Instant::now() + BASE_LOCK_WAIT;
    loop {
        if let Some(f) = super::vmid::try_lock(&path)? {
            return Ok(f);
        }
        if std::time::Instant::now() >= deadline {
            bail!("another create has been making the clone base {base} for {} s (lock {})", BASE_LOCK_WAIT.as_secs(), path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// FNV-1a: a stable short key for a path (not security relevant).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}
