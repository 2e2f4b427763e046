//! `linux.rootfsPropagation` on the guest's `/`. LXC turns the guest's
//! root into a shared mount right after its pivot_root (lxc conf.c
//! `lxc_pivot_root`, "a new peer group"), whatever the spec asks. So
//! create sets the spec's mode once the guest's init waits for start
//! (before anything of the bundle runs), from the host, in the guest's
//! mount namespace, as runc sets it on its root.
//!
//! For `slave`/`rslave` the guest's root must have a master: the rootfs
//! dataset's mount (nexcage's own) is made shared on the host before the
//! guest starts, so the guest's root is its dependent and receives what is
//! mounted under the dataset on the host, as runc's slave root receives
//! from its source.

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// The mount flags of an OCI propagation mode (runc's `mountPropagationMapping`).
fn flags(mode: &str) -> Option<MsFlags> {
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

/// Whether `mode` needs the guest's root to have a master.
pub fn needs_shared_source(mode: &str) -> bool {
    matches!(mode, "slave" | "rslave")
}

/// Makes the rootfs dataset's mount at `rootfs` (nexcage's) shared, before
/// the guest's mount namespace is made from the host's.
pub fn share_source(rootfs: &Path) -> Result<()> {
    mount(None::<&str>, rootfs, None::<&str>, MsFlags::MS_SHARED, None::<&str>).with_context(|| format!("linux.rootfsPropagation: cannot make {} shared", rootfs.display()))
}

/// Sets `mode` on `/` in the mount namespace of `init` (the guest's PID 1).
pub fn apply(init: i32, mode: &str) -> Result<()> {
    let fl = flags(mode).with_context(|| format!("unknown rootfsPropagation {mode:?}"))?;
    let ns = std::fs::File::open(format!("/proc/{init}/ns/mnt")).with_context(|| format!("open the mount namespace of the guest's init {init}"))?;
    // SAFETY: the child only makes raw syscalls (setns, mount) and _exit;
    // it touches no lock or allocation another thread may hold.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // SAFETY: plain syscalls on a valid fd and static C strings.
            let rc = unsafe {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) != 0 {
                    100
                } else if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), fl.bits(), std::ptr::null()) != 0 {
                    101
                } else {
                    0
                }
            };
            let errno = if rc == 0 { 0 } else { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) & 0xff };
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(if rc == 0 { 0 } else { errno.max(1) }) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).context("wait for the propagation child")? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, e) => bail!("linux.rootfsPropagation: cannot make the guest's / {mode}: {}", std::io::Error::from_raw_os_error(e)),
            other => bail!("linux.rootfsPropagation: the child setting {mode} ended with {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_runcs() {
        assert_eq!(flags("rslave"), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert_eq!(flags("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(flags("sideways"), None);
        assert!(needs_shared_source("slave") && !needs_shared_source("private"));
    }
}
