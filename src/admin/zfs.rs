//! Snapshots, rollbacks and clones of container rootfs datasets
//! (`<pool>/subvol-<vmid>-disk-0`, as Proxmox names them), via nexcage-zfs.
//! Only containers whose backend put their rootfs on ZFS have one (the
//! proxmox backend's copy/clone strategies).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{bundle, inuse, monitor};
use crate::container::Container;
use crate::context::Ctx;

/// `NAME@SNAP` split in two; both parts non-empty.
pub fn split(target: &str) -> Result<(&str, &str)> {
    match target.split_once('@') {
        Some((n, s)) if !n.is_empty() && !s.is_empty() => Ok((n, s)),
        _ => bail!("{target:?}: expected NAME@SNAP"),
    }
}

/// Container `id` (locked) and its rootfs dataset.
fn dataset(ctx: &Ctx, id: &str) -> Result<(String, Container)> {
    let c = Container::load(ctx, id)?;
    let Some(ds) = c.record().dataset().map(str::to_string) else {
        bail!("container {id} has no ZFS rootfs dataset (backend {}; only the proxmox backend's copy/clone strategies use ZFS)", c.record().backend);
    };
    Ok((ds, c))
}

fn snap_name(snap: &str) -> Result<()> {
    if snap.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        Ok(())
    } else {
        bail!("snapshot name {snap:?}: use letters, digits and - _ . :")
    }
}

/// Container ids cannot contain `/`, dataset names below a pool do: the
/// user guide's `zfs snapshot|clone POOL/DATASET@SNAP` act on the dataset.
fn is_dataset(name: &str) -> bool {
    name.contains('/')
}

/// Snapshots NAME's rootfs as `target` (NAME@SNAP), or the dataset
/// POOL/DATASET@SNAP itself; returns `dataset@SNAP`.
pub fn snapshot(ctx: &Ctx, target: &str) -> Result<String> {
    let (name, snap) = split(target)?;
    snap_name(snap)?;
    if is_dataset(name) {
        nexcage_zfs::Zfs::new().snapshot(target)?;
        return Ok(target.to_string());
    }
    let (ds, _) = dataset(ctx, name)?;
    let full = format!("{ds}@{snap}");
    nexcage_zfs::Zfs::new().snapshot(&full)?;
    Ok(full)
}

/// Rolls a container that is not running back to NAME@SNAP.
pub fn rollback(ctx: &Ctx, target: &str, recursive: bool) -> Result<()> {
    let (name, snap) = split(target)?;
    let (ds, c) = dataset(ctx, name)?;
    c.status().can_rollback(name)?;
    nexcage_zfs::Zfs::new().rollback(&format!("{ds}@{snap}"), recursive)?;
    Ok(())
}

/// One row per dataset and snapshot of every container's rootfs:
/// `{container, status, name, type, used, refquota, origin}`.
pub fn list(ctx: &Ctx) -> Result<Vec<Value>> {
    let z = nexcage_zfs::Zfs::new();
    let mut rows = Vec::new();
    for id in ctx.store()?.ids()? {
        let Ok((ds, c)) = dataset(ctx, &id) else { continue };
        let st = c.status();
        drop(c);
        for d in z.list(&ds)? {
            rows.push(json!({"container": id, "status": st.to_string(), "name": d.name, "type": d.kind,
                "used": d.used, "refquota": d.refquota, "origin": d.origin}));
        }
    }
    Ok(rows)
}

/// `{container, vmid, dataset, used, refquota, origin, mountpoint, snapshots}`.
pub fn info(ctx: &Ctx, name: &str) -> Result<Value> {
    let (ds, c) = dataset(ctx, name)?;
    let list = nexcage_zfs::Zfs::new().list(&ds)?;
    let me = list.iter().find(|d| d.name == ds);
    let snaps: Vec<&str> = list.iter().filter(|d| d.kind == "snapshot").map(|d| d.name.as_str()).collect();
    Ok(json!({"container": name, "vmid": c.record().vmid(), "dataset": ds,
        "used": me.map(|d| d.used), "refquota": me.and_then(|d| d.refquota), "origin": me.and_then(|d| d.origin.clone()),
        "mountpoint": me.and_then(|d| d.mountpoint.clone()), "snapshots": snaps}))
}

/// NEWNAME gets a copy of NAME's config.json whose rootfs strategy is a
/// clone of NAME@SNAP; it is then created like any admin container.
/// With POOL/DATASET@SNAP, NEWNAME is a dataset: a plain `zfs clone`.
pub fn clone(ctx: &Ctx, target: &str, new_name: &str, start: bool) -> Result<()> {
    let (name, snap) = split(target)?;
    if is_dataset(name) {
        if start || !is_dataset(new_name) {
            bail!("cloning dataset {target}: the clone must be a dataset too (POOL/NAME), and cannot be started");
        }
        nexcage_zfs::Zfs::new().clone_to(target, new_name, None)?;
        return Ok(());
    }
    let (ds, c) = dataset(ctx, name)?;
    let full = format!("{ds}@{snap}");
    if !nexcage_zfs::Zfs::new().exists(&full)? {
        bail!("snapshot {full} does not exist");
    }
    let src = c.record().clone();
    drop(c);
    super::ensure_new(ctx, new_name)?;
    let data = std::fs::read(src.bundle.join("config.json")).with_context(|| format!("reading {}", src.bundle.display()))?;
    let mut spec: Value = serde_json::from_slice(&data).context("config.json")?;
    spec["root"]["path"] = json!(src.rootfs);
    let ann = &mut spec["annotations"];
    if !ann.is_object() {
        *ann = json!({});
    }
    ann[super::ADMIN_ANNOTATION] = json!("true");
    ann[super::BACKEND_ANNOTATION] = json!(src.backend.to_string());
    ann[super::STRATEGY_ANNOTATION] = json!("clone");
    ann[super::CLONE_ANNOTATION] = json!(full);
    let dir = super::admin_dir(ctx, new_name)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let r = bundle::write_spec(&dir, &spec).and_then(|_| inuse::refresh(ctx)).and_then(|_| monitor::spawn(ctx, new_name, &dir, start));
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = inuse::refresh(ctx);
        return Err(e);
    }
    Ok(())
}

/// `zfs create POOL/DATASET`: a dataset with Proxmox's subvol properties
/// where the implementation takes them (nexcage_zfs::Zfs::create_subvol).
pub fn create(name: &str) -> Result<()> {
    if !is_dataset(name) {
        bail!("{name:?}: expected POOL/DATASET");
    }
    nexcage_zfs::Zfs::new().create_subvol(name, None)?;
    Ok(())
}

/// `zfs info` without a name: the configured pool (`storage.pool`), its
/// health and usage in bytes, and the dataset containers go under.
pub fn pool_info(ctx: &Ctx) -> Result<Value> {
    let cfg = ctx.config()?;
    let pool = cfg.storage.pool.clone().context("no ZFS pool configured: nexcage config set storage.pool POOL")?;
    let z = nexcage_zfs::Zfs::new();
    let health = z.pool_health(&pool)?;
    let u = z.pool_usage(&pool)?;
    Ok(json!({"pool": pool, "health": health, "size": u.size, "allocated": u.allocated, "free": u.free, "parent": cfg.storage.zfs_parent()}))
}
