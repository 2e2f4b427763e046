//! The administrator's path: containers created by hand with `create --name`
//! from an image or a bundle directory. They get a bundle of their own under
//! the data dir (`<image store>/bundles/<name>/`, which also keeps their log
//! and last exit status across restarts and reboots) and a monitor process
//! that owns their stdout/stderr; they are then created through the same
//! `Container::create` flow engines use.

pub mod bench;
pub mod bundle;
pub mod check;
pub mod enforced;
pub mod follow;
pub mod gc;
pub mod info;
pub mod inuse;
pub mod lifecycle;
pub mod logfile;
pub mod monitor;
pub mod opts;
pub mod perf;
pub mod ports;
pub mod reach;
pub mod report;
pub mod resources;
pub mod spec_edit;
pub mod stats;
pub mod zfs;

use std::path::PathBuf;

use anyhow::Result;

use crate::container::Container;
use crate::context::Ctx;
use crate::state::Record;

pub use opts::AdminArgs;

/// Marks a container as admin-managed (its bundle is nexcage's own).
pub const ADMIN_ANNOTATION: &str = "org.nexcage.admin";
pub const IMAGE_ANNOTATION: &str = "org.nexcage.image";
pub const AUTOSTART_ANNOTATION: &str = "org.nexcage.auto-start";
pub const STORAGE_TYPE_ANNOTATION: &str = "org.nexcage.storage-type";
/// The Proxmox backend's own: disk size, rootfs strategy, clone source.
pub use crate::backend::{BACKEND_ANNOTATION, CLONE_ANNOTATION, DISK_ANNOTATION, STRATEGY_ANNOTATION};
pub const PORTS_ANNOTATION: &str = "org.nexcage.ports";
pub const NETWORK_ANNOTATION: &str = "org.nexcage.network";

/// Where admin bundles live.
pub fn bundles_dir(ctx: &Ctx) -> Result<PathBuf> {
    Ok(ctx.image_store()?.join("bundles"))
}

pub fn admin_dir(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    Ok(bundles_dir(ctx)?.join(name))
}

pub fn is_admin(rec: &Record) -> bool {
    rec.annotations.get(ADMIN_ANNOTATION).map(String::as_str) == Some("true")
}

/// The admin dir of container `id` if it is an admin container (read
/// before a delete, which removes the record).
pub fn admin_dir_of(ctx: &Ctx, id: &str) -> Option<PathBuf> {
    let c = Container::load(ctx, id).ok()?;
    is_admin(c.record()).then(|| c.record().bundle.clone())
}

/// Where the log of admin container `id` is: its admin dir, also after its
/// record is gone (stopped and deleted by a reboot) while its bundle stays.
pub fn log_dir(ctx: &Ctx, id: &str) -> Option<PathBuf> {
    admin_dir_of(ctx, id).or_else(|| admin_dir(ctx, id).ok().filter(|d| d.join("config.json").exists()))
}

/// Fails unless `name` is a valid id that no container has yet.
pub fn ensure_new(ctx: &Ctx, name: &str) -> Result<()> {
    crate::state::id::validate(name)?;
    if ctx.root.join(name).exists() {
        anyhow::bail!("container {name} already exists");
    }
    Ok(())
}

/// An admin container that `start` (re)launches: one with a record, or
/// one whose record vanished (reboot) but whose bundle is still here.
pub fn startable_dir(ctx: &Ctx, id: &str) -> Option<PathBuf> {
    if ctx.root.join(id).exists() {
        return admin_dir_of(ctx, id);
    }
    crate::state::id::validate(id).ok()?;
    admin_dir(ctx, id).ok().filter(|d| d.join("config.json").is_file())
}

/// After an admin container was deleted: drop its bundle
/// dir (log included) and its image from the store's in-use list.
pub fn forget(ctx: &Ctx, dir: &std::path::Path) -> Result<()> {
    if dir.starts_with(bundles_dir(ctx)?) {
        if let Some(id) = dir.file_name().and_then(|n| n.to_str()) {
            crate::network::release(ctx, id, dir)?;
        }
        // The exiting monitor may still be writing exit.json: try again.
        let mut tries = 0;
        while dir.exists() {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => break,
                Err(_) if tries < 5 => std::thread::sleep(std::time::Duration::from_millis(100)),
                Err(e) => anyhow::bail!("removing {}: {e}", dir.display()),
            }
            tries += 1;
        }
    }
    inuse::refresh(ctx)
}
