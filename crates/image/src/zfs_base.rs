//! ZFS base datasets: an image unpacked once into
//! `<parent>/basevol-<key>-disk-0` and snapshotted `@__base__` (Proxmox's
//! template naming), so each container's rootfs is a `zfs clone` of it,
//! O(1) in the image's size. The key is the start of the image's manifest
//! digest: a re-tagged image shares its base, a new build gets a new one.
//!
//! Bases are recorded in `<store>/zfs-bases.json` (snapshot -> manifest
//! digest), so removing the last name of an image also destroys its base
//! (unless containers still clone it) without knowing nexcage's config.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nexcage_zfs::{Zfs, BASE_SNAPSHOT};
use tracing::{info, warn};

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::store::{ImageEntry, Store};
use crate::unpack::{unpack_rootfs, ApplyOptions};

const RECORD: &str = "zfs-bases.json";
const LOCK: &str = "zfs-bases.lock";

/// A base ready to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub dataset: String,
    /// `<dataset>@__base__`: what `zfs clone` takes.
    pub snapshot: String,
    pub mountpoint: PathBuf,
    /// False when the base already existed.
    pub created: bool,
}

/// Owners shifted into an unprivileged guest's id range: `(base, count)`,
/// e.g. Proxmox's `(100000, 65536)`.
pub type IdShift = (u32, u32);

/// Proxmox's map for unprivileged guests (root:100000:65536).
pub const PROXMOX_SHIFT: IdShift = (100000, 65536);

/// The base dataset name of `image` under `parent` (`u`: shifted owners).
pub fn dataset_name(parent: &str, image: &ImageEntry, shift: Option<IdShift>) -> Result<String> {
    let d = image.digest()?;
    let hex = d.to_string();
    let hex = hex.rsplit(':').next().unwrap_or(&hex);
    let u = if shift.is_some() { "u" } else { "" };
    Ok(nexcage_zfs::basevol_name(parent, &format!("{}{u}", &hex[..hex.len().min(16)])))
}

/// The base of `image` under `parent`, unpacked and snapshotted the first
/// time (with owners shifted for unprivileged guests when `shift` is set).
/// Concurrent calls wait for each other; a base left half-made by a crash
/// (no snapshot) is made again.
pub fn ensure(store: &Store, image: &ImageEntry, zfs: &Zfs, parent: &str, shift: Option<IdShift>) -> Result<Base> {
    let lock = store.lock_file(LOCK)?;
    lock.lock().ctx(store.root().join(LOCK))?;
    let dataset = dataset_name(parent, image, shift)?;
    let snapshot = format!("{dataset}@{BASE_SNAPSHOT}");
    if zfs.exists(&snapshot)? {
        record(store, image, &snapshot)?;
        let mountpoint = zfs.mountpoint(&dataset)?;
        return Ok(Base { dataset, snapshot, mountpoint, created: false });
    }
    zfs.destroy(&dataset, true)?;
    let made = (|| {
        let skipped = zfs.create_subvol(&dataset, None)?;
        if !skipped.0.is_empty() {
            info!(%dataset, "zfs refused {:?}; base created without them", skipped.0);
        }
        let mountpoint = zfs.mountpoint(&dataset)?;
        let stats = unpack_rootfs(store, image, &mountpoint, &ApplyOptions::default())?;
        info!(%dataset, entries = stats.entries, bytes = stats.bytes, "image unpacked into base");
        if let Some((base, count)) = shift {
            nexcage_zfs::shift_owners(&mountpoint, base, count)?;
        }
        zfs.snapshot(&snapshot)?;
        // Clones are the writable copies; the base itself must not change.
        if let Err(e) = zfs.set(&dataset, "readonly", "on") {
            warn!(%dataset, "could not make the base read-only: {e}");
        }
        Ok(mountpoint)
    })();
    match made {
        Ok(mountpoint) => {
            record(store, image, &snapshot)?;
            Ok(Base { dataset, snapshot, mountpoint, created: true })
        }
        Err(e) => {
            if let Err(d) = zfs.destroy(&dataset, true) {
                warn!(%dataset, "could not remove the half-made base: {d}");
            }
            Err(e)
        }
    }
}

fn read_record(store: &Store) -> Result<BTreeMap<String, String>> {
    let p = store.root().join(RECORD);
    match std::fs::read(&p) {
        Ok(data) => Ok(serde_json::from_slice(&data)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).ctx(p),
    }
}

/// Record key: the snapshot (one image may have a plain and a shifted base).
fn record(store: &Store, image: &ImageEntry, snapshot: &str) -> Result<()> {
    let mut r = read_record(store)?;
    let digest = image.digest()?.to_string();
    if r.get(snapshot) == Some(&digest) {
        return Ok(());
    }
    r.insert(snapshot.to_string(), digest);
    store.write_atomic(&store.root().join(RECORD), &serde_json::to_vec_pretty(&r)?)
}

/// Recorded bases: (snapshot, manifest digest).
pub fn list(store: &Store) -> Result<Vec<(String, String)>> {
    Ok(read_record(store)?.into_iter().collect())
}

/// Destroys the bases of images no name refers to any more. A base that
/// containers still clone stays (and stays recorded) until they are gone.
/// Returns the snapshots destroyed.
pub fn collect(store: &Store, zfs: &Zfs) -> Result<Vec<String>> {
    let lock = store.lock_file(LOCK)?;
    lock.lock().ctx(store.root().join(LOCK))?;
    let mut r = read_record(store)?;
    if r.is_empty() {
        return Ok(Vec::new());
    }
    let live: Vec<Digest> = store.images()?.iter().filter_map(|e| e.digest().ok()).collect();
    let mut gone = Vec::new();
    for (snap, digest) in r.clone() {
        if live.iter().any(|d| d.to_string() == digest) {
            continue;
        }
        let dataset = snap.split('@').next().unwrap_or(&snap).to_string();
        match zfs.destroy(&dataset, true) {
            Ok(()) => {
                r.remove(&snap);
                gone.push(snap);
            }
            Err(e) => warn!(%dataset, "base kept (containers may still clone it): {e}"),
        }
    }
    store.write_atomic(&store.root().join(RECORD), &serde_json::to_vec_pretty(&r)?)?;
    Ok(gone)
}

/// [`collect`] with the host's `zfs`, run only when bases are recorded (so
/// hosts without ZFS never run `zfs`). Returns the snapshots destroyed.
pub fn collect_unused(store: &Store) -> Result<Vec<String>> {
    if list(store)?.is_empty() {
        return Ok(Vec::new());
    }
    collect(store, &Zfs::new())
}
