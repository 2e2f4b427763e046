//! Mount settings LXC does not take from its config, set by create in the
//! guest's mount namespace once its init waits for start (before anything
//! of the bundle runs), as runc sets them on its container's mounts:
//!
//! * `linux.rootfsPropagation` on `/`: LXC turns the guest's root into a
//!   shared mount right after its pivot_root (lxc conf.c `lxc_pivot_root`,
//!   "a new peer group"), whatever the spec asks. For `slave`/`rslave` the
//!   guest's root needs a master: the rootfs dataset's mount (nexcage's
//!   own) is made shared on the host before the guest starts, so the
//!   guest's root is its dependent and receives what is mounted under the
//!   dataset on the host, as runc's slave root receives from its source.
//! * the flags of the `/dev` tmpfs (`nosuid`, `noexec`, ...): LXC's autodev
//!   mounts it with none.

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use super::in_guest;

/// The mount flags of an OCI propagation mode (runc's `mountPropagationMapping`).
fn propagation_flags(mode: &str) -> Option<MsFlags> {
    let r = MsFlags::MS_REC;
    Some(match mode {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | r,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | r,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | r,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | r,
        _ => return None,
    })
}

/// The per-mount flags of mount options (runc's `mountFlags`, the ones a
/// bind remount can set); data options (`mode=`, `size=`) are LXC's.
fn mount_flags(options: &[String]) -> MsFlags {
    options.iter().fold(MsFlags::empty(), |f, o| {
        f | match o.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            _ => MsFlags::empty(),
        }
    })
}

/// Whether `mode` needs the guest's root to have a master.
pub fn needs_shared_source(mode: &str) -> bool {
    matches!(mode, "slave" | "rslave")
}

/// Makes the rootfs dataset's mount at `rootfs` (nexcage's) shared, before
/// the guest's mount namespace is made from the host's.
pub fn share_source(rootfs: &Path) -> Result<()> {
    mount(None::<&str>, rootfs, None::<&str>, MsFlags::MS_SHARED, None::<&str>).with_context(|| format!("linux.rootfsPropagation: cannot make {} shared", rootfs.display()))
}

/// Sets the root's propagation `mode` and the `/dev` flags `dev` in the
/// mount namespace of `init` (the guest's PID 1).
pub fn apply(init: i32, mode: Option<&str>, dev: &[String]) -> Result<()> {
    let prop = match mode {
        Some(m) => Some(propagation_flags(m).with_context(|| format!("unknown rootfsPropagation {m:?}"))?),
        None => None,
    };
    let dev = mount_flags(dev);
    if prop.is_none() && dev.is_empty() {
        return Ok(());
    }
    in_guest::run(init, &["mnt"], || {
        if !dev.is_empty() {
            mount(None::<&str>, "/dev", None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | dev, None::<&str>).context("cannot set the flags of the guest's /dev")?;
        }
        if let Some(fl) = prop {
            mount(None::<&str>, "/", None::<&str>, fl, None::<&str>).with_context(|| format!("linux.rootfsPropagation: cannot make the guest's / {}", mode.unwrap_or_default()))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_runcs() {
        assert_eq!(propagation_flags("rslave"), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert_eq!(propagation_flags("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(propagation_flags("sideways"), None);
        assert!(needs_shared_source("slave") && !needs_shared_source("private"));
        let o: Vec<String> = ["nosuid", "strictatime", "mode=755", "size=65536k"].map(String::from).into();
        assert_eq!(mount_flags(&o), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
    }
}
