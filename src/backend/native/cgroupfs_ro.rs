//! Honours `ro` on a cgroup v1 mount: libcontainer 0.7 mounts the v1
//! controller hierarchies read-write whatever the mount's options, so after
//! create (the init is waiting for start, its mounts are done) nexcage
//! remounts them read-only from inside the container's mount namespace.

use std::fs::File;
use std::os::fd::AsRawFd;
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
/// remount, the mount namespace and root of `pid`, and the caller's own
/// mount namespace, root and working directory to come back to.
pub struct Targets {
    mounts: Vec<PathBuf>,
    ns: File,
    root: File,
    own_ns: File,
    own_root: File,
    own_cwd: File,
}

pub fn targets(pid: i32, dest: &Path) -> Result<Targets> {
    Ok(Targets {
        mounts: mounts_below(pid, dest)?,
        ns: File::open(format!("/proc/{pid}/ns/mnt")).context("mount namespace of the container")?,
        root: File::open(format!("/proc/{pid}/root")).context("root of the container")?,
        own_ns: File::open("/proc/thread-self/ns/mnt").context("own mount namespace")?,
        own_root: File::open("/").context("own root")?,
        own_cwd: File::open(".").context("own working directory")?,
    })
}

/// Remounts `t`'s mount points read-only from inside the container's mount
/// namespace, entered by the calling thread (no thread of its own: on this
/// VM handing the work to a new thread on the other CPU cost 0.1–0.8 ms
/// before it ran), which then returns to its own namespace, root and
/// working directory. The thread's filesystem attributes stop being shared
/// with the process's other threads (setns(CLONE_NEWNS) needs that).
pub fn remount_in(t: &Targets) -> Result<()> {
    unshare(CloneFlags::CLONE_FS).map_err(|e| anyhow!("unshare(CLONE_FS): {e}"))?;
    setns(&t.ns, CloneFlags::CLONE_NEWNS).map_err(|e| anyhow!("setns(mnt): {e}"))?;
    let done = remount_all(t);
    come_back(t)?;
    done
}

fn remount_all(t: &Targets) -> Result<()> {
    nix::unistd::fchdir(t.root.as_raw_fd()).map_err(|e| anyhow!("fchdir: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| anyhow!("chroot: {e}"))?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for m in &t.mounts {
        mount(None::<&str>, m, None::<&str>, flags, None::<&str>)
            .map_err(|e| anyhow!("remount {} read-only: {e}", m.display()))?;
    }
    Ok(())
}

/// Back to the namespace, root and working directory [`targets`] found.
fn come_back(t: &Targets) -> Result<()> {
    setns(&t.own_ns, CloneFlags::CLONE_NEWNS).map_err(|e| anyhow!("setns back to the own mount namespace: {e}"))?;
    nix::unistd::fchdir(t.own_root.as_raw_fd()).map_err(|e| anyhow!("fchdir to the own root: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| anyhow!("chroot back: {e}"))?;
    nix::unistd::fchdir(t.own_cwd.as_raw_fd()).map_err(|e| anyhow!("fchdir to the working directory: {e}"))
}
