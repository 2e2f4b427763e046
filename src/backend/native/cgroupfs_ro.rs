//! Honours `ro` on a cgroup v1 mount: libcontainer 0.7 mounts the v1
//! controller hierarchies read-write whatever the mount's options, so after
//! create (the init is waiting for start, its mounts are done) nexcage
//! remounts them read-only from inside the container's mount namespace.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// The destination of a read-only cgroup mount in the spec, if any (and the
/// container has no user namespace, whose mounts root could not remount).
pub fn wanted(spec: &Spec) -> Option<PathBuf> {
    let userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if userns || !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return None; // not a v1 host, or not ours to remount
    }
    spec.mounts().as_ref()?.iter().find_map(|m| {
        let ro = m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "ro"));
        (m.typ().as_deref() == Some("cgroup") && ro).then(|| m.destination().clone())
    })
}

/// Mount points at or below `dest` in `pid`'s mount namespace, deepest first.
fn mounts_below(pid: i32, dest: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dest))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    Ok(v)
}

/// What [`remount_in`] needs, opened from the host: the mount points to
/// remount and the mount namespace and root of `pid`.
pub struct Targets {
    mounts: Vec<PathBuf>,
    ns: File,
    root: File,
}

pub fn targets(pid: i32, dest: &Path) -> Result<Targets> {
    Ok(Targets {
        mounts: mounts_below(pid, dest)?,
        ns: File::open(format!("/proc/{pid}/ns/mnt")).context("mount namespace of the container")?,
        root: File::open(format!("/proc/{pid}/root")).context("root of the container")?,
    })
}

/// Remounts `t`'s mount points read-only from inside the container's mount
/// namespace. Switches the calling thread's filesystem attributes and mount
/// namespace: call it on a short-lived thread (create's fix-up thread).
pub fn remount_in(t: &Targets) -> Result<()> {
    // setns(CLONE_NEWNS) needs a thread that does not share its filesystem
    // attributes with the rest of the process.
    unshare(CloneFlags::CLONE_FS).map_err(|e| anyhow!("unshare(CLONE_FS): {e}"))?;
    setns(&t.ns, CloneFlags::CLONE_NEWNS).map_err(|e| anyhow!("setns(mnt): {e}"))?;
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&t.root)).map_err(|e| anyhow!("fchdir: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| anyhow!("chroot: {e}"))?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for m in &t.mounts {
        mount(None::<&str>, m, None::<&str>, flags, None::<&str>)
            .map_err(|e| anyhow!("remount {} read-only: {e}", m.display()))?;
    }
    Ok(())
}
