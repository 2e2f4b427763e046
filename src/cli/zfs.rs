//! `nexcage zfs ...`: snapshots, rollbacks and clones of container rootfs
//! datasets (`<pool>/subvol-<vmid>-disk-0`, as Proxmox names them), via
//! nexcage-zfs. Only containers whose backend put their rootfs on ZFS have
//! one (the proxmox backend's copy/clone strategies).

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::Ctx;
use crate::admin::{self, bundle, monitor};
use crate::container::status;
use crate::state::Status;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Snapshot a container's rootfs: NAME@SNAP
    Snapshot { target: String },
    /// Roll a stopped container's rootfs back to NAME@SNAP
    Rollback {
        target: String,
        /// Also destroy snapshots newer than SNAP
        #[arg(short, long)]
        recursive: bool,
    },
    /// A new container NEWNAME whose rootfs is a clone of NAME@SNAP
    Clone {
        target: String,
        new_name: String,
        /// Start it once created
        #[arg(long)]
        start: bool,
    },
    /// Rootfs datasets and snapshots of all containers
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Properties of one container's rootfs dataset
    Info { name: String },
}

fn split(target: &str) -> Result<(&str, &str)> {
    match target.split_once('@') {
        Some((n, s)) if !n.is_empty() && !s.is_empty() => Ok((n, s)),
        _ => bail!("{target:?}: expected NAME@SNAP"),
    }
}

/// The rootfs dataset of container `id` and whether it is running.
fn dataset(ctx: &Ctx, id: &str) -> Result<(String, Status, crate::state::Record)> {
    let rec = ctx.store()?.lock(id)?.load()?;
    let Some(ds) = rec.backend_data.dataset().map(str::to_string) else {
        bail!("container {id} has no ZFS rootfs dataset (backend {}; only the proxmox backend's copy/clone strategies use ZFS)", rec.backend);
    };
    Ok((ds, status(&rec), rec))
}

fn snap_name(snap: &str) -> Result<()> {
    if snap.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        Ok(())
    } else {
        bail!("snapshot name {snap:?}: use letters, digits and - _ . :")
    }
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    let z = nexcage_zfs::Zfs::new();
    match cmd {
        Cmd::Snapshot { target } => {
            let (name, snap) = split(&target)?;
            snap_name(snap)?;
            let (ds, _, _) = dataset(ctx, name)?;
            z.snapshot(&format!("{ds}@{snap}"))?;
            println!("{ds}@{snap}");
        }
        Cmd::Rollback { target, recursive } => {
            let (name, snap) = split(&target)?;
            let (ds, st, _) = dataset(ctx, name)?;
            if matches!(st, Status::Running | Status::Paused) {
                bail!("container {name} is {st}: stop it before a rollback");
            }
            z.rollback(&format!("{ds}@{snap}"), recursive)?;
        }
        Cmd::Clone { target, new_name, start } => {
            let (name, snap) = split(&target)?;
            let (ds, _, rec) = dataset(ctx, name)?;
            let full = format!("{ds}@{snap}");
            if !z.exists(&full)? {
                bail!("snapshot {full} does not exist");
            }
            clone(ctx, &rec, &full, &new_name, start)?;
            println!("{new_name}");
        }
        Cmd::List { format } => {
            let mut rows = Vec::new();
            for id in ctx.store()?.ids()? {
                let Ok((ds, st, _)) = dataset(ctx, &id) else { continue };
                for d in z.list(&ds)? {
                    rows.push(json!({"container": id, "status": st.to_string(), "name": d.name, "type": d.kind,
                        "used": d.used, "refquota": d.refquota, "origin": d.origin}));
                }
            }
            if format == "json" {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{:<20} {:<48} {:<10} {:>12} {:>12} ORIGIN", "CONTAINER", "NAME", "TYPE", "USED", "REFQUOTA");
                for r in &rows {
                    println!("{:<20} {:<48} {:<10} {:>12} {:>12} {}", r["container"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""),
                        r["type"].as_str().unwrap_or(""), r["used"], r["refquota"], r["origin"].as_str().unwrap_or("-"));
                }
            }
        }
        Cmd::Info { name } => {
            let (ds, _, rec) = dataset(ctx, &name)?;
            let list = z.list(&ds)?;
            let me = list.iter().find(|d| d.name == ds);
            let snaps: Vec<&str> = list.iter().filter(|d| d.kind == "snapshot").map(|d| d.name.as_str()).collect();
            let v = json!({"container": name, "vmid": rec.backend_data.vmid(), "dataset": ds,
                "used": me.map(|d| d.used), "refquota": me.and_then(|d| d.refquota), "origin": me.and_then(|d| d.origin.clone()),
                "mountpoint": me.and_then(|d| d.mountpoint.clone()), "snapshots": snaps});
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(0)
}

/// NEWNAME gets a copy of NAME's config.json whose rootfs strategy is a
/// clone of `snap`; it is then created like any admin container.
fn clone(ctx: &Ctx, src: &crate::state::Record, snap: &str, new_name: &str, start: bool) -> Result<()> {
    crate::state::id::validate(new_name)?;
    if ctx.root.join(new_name).exists() {
        bail!("container {new_name} already exists");
    }
    let data = std::fs::read(src.bundle.join("config.json")).with_context(|| format!("reading {}", src.bundle.display()))?;
    let mut spec: serde_json::Value = serde_json::from_slice(&data).context("config.json")?;
    spec["root"]["path"] = json!(src.rootfs);
    let ann = &mut spec["annotations"];
    if !ann.is_object() {
        *ann = json!({});
    }
    ann[admin::ADMIN_ANNOTATION] = json!("true");
    ann[admin::BACKEND_ANNOTATION] = json!(src.backend.to_string());
    ann["org.nexcage.rootfs-strategy"] = json!("clone");
    ann["org.nexcage.clone-from"] = json!(snap);
    let dir = admin::admin_dir(ctx, new_name)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let r = bundle::write_spec(&dir, &spec).and_then(|_| admin::inuse::refresh(ctx)).and_then(|_| monitor::spawn(ctx, new_name, &dir, start));
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = admin::inuse::refresh(ctx);
        return Err(e);
    }
    Ok(())
}
