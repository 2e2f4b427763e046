//! A v1 `cgroup` mount in a container that joins a PID namespace by path
//! (Kubernetes' `shareProcessNamespace`: every container of the pod joins
//! the sandbox's), given to libcontainer as the mounts it would make itself.
//!
//! libcontainer 0.7 (rootfs/mount.rs, `mount_cgroup_v1`) makes a v1 cgroup
//! mount as a tmpfs with one bind mount per controller hierarchy ("emulated"),
//! and first reads the cgroups of the init's parent in the host's /proc to
//! strip them from the bind sources. In a joined PID namespace the parent is
//! outside the namespace (getppid() is 0), so it reads `/proc/<own pid in the
//! joined namespace>` instead: a host process with the same number, or
//! "Procfs(NotFound(/proc/9))" and the create fails. The same mounts given
//! as plain tmpfs and bind mounts never reach that code: sources are the
//! container's own cgroup in each hierarchy (the path libcgroups' v1 manager
//! puts the init in, or for hierarchies it does not manage, such as
//! `name=systemd`, the one it inherits from nexcage), less host PID 1's
//! cgroup as libcontainer strips it. A co-mounted hierarchy
//! (`cpu,cpuacct`) gets a bind per controller where libcontainer makes a
//! symlink. `ro` is applied after create by cgroupfs_ro, as for every v1
//! cgroup mount.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcgroups::common::{get_cgroup_setup, CgroupSetup, DEFAULT_CGROUP_ROOT};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Mount, MountBuilder, Spec};

/// `spec`'s mounts with its v1 `cgroup` mount replaced by the tmpfs and bind
/// mounts libcontainer would make, when the container joins a PID namespace
/// by path on a v1 or hybrid host; None otherwise. `id`: the container's id
/// (libcontainer's default cgroups path names it).
pub fn replaced(spec: &Spec, id: &str) -> Result<Option<Vec<Mount>>> {
    let Some(linux) = spec.linux() else { return Ok(None) };
    let joins_pid = linux.namespaces().as_ref().is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some()));
    let Some(mounts) = spec.mounts().as_ref().filter(|m| joins_pid && m.iter().any(is_cgroup)) else { return Ok(None) };
    if !matches!(get_cgroup_setup(), Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid)) {
        return Ok(None);
    }
    let cgroup_path = libcontainer::utils::get_cgroup_path(linux.cgroups_path(), id);
    let hierarchies = hierarchies(&cgroup_path)?;
    let mut out = Vec::with_capacity(mounts.len() + hierarchies.len());
    for m in mounts {
        if is_cgroup(m) {
            out.extend(emulated(m.destination(), &hierarchies)?);
        } else {
            out.push(m.clone());
        }
    }
    Ok(Some(out))
}

fn is_cgroup(m: &Mount) -> bool {
    m.typ().as_deref() == Some("cgroup")
}

/// (mount point under /sys/fs/cgroup, the container's cgroup dir in it) for
/// each v1 hierarchy libcontainer would bind.
fn hierarchies(cgroup_path: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let managed: Vec<String> = libcgroups::v1::util::list_supported_mount_points()
        .map_err(|e| anyhow!("cannot list the cgroup v1 controllers: {e}"))?
        .into_keys()
        .map(|c| c.to_string())
        .collect();
    let own = cgroups_of("self")?;
    let root = cgroups_of("1").unwrap_or_default();
    let mut out = Vec::new();
    let points = libcgroups::v1::util::list_subsystem_mount_points().map_err(|e| anyhow!("cannot list the cgroup v1 mounts: {e}"))?;
    for point in points.into_iter().filter(|p| p.starts_with(DEFAULT_CGROUP_ROOT)) {
        let Some(name) = point.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        let key = if name == "systemd" { "name=systemd".to_string() } else { name.clone() };
        let Some((hierarchy, inherited)) = own.get(&key) else {
            tracing::warn!("no cgroup of nexcage's in the {key} hierarchy: not mounted in the container");
            continue;
        };
        let path = if name.split(',').any(|c| managed.iter().any(|m| m == c)) {
            format!("/{}", cgroup_path.display().to_string().trim_start_matches('/'))
        } else {
            inherited.clone()
        };
        let strip = root.values().find(|(h, _)| h == hierarchy).map(|(_, p)| p.as_str()).unwrap_or("");
        let rel = path.strip_prefix(strip).unwrap_or(&path).trim_start_matches('/').to_string();
        out.push((point.clone(), point.join(rel)));
    }
    Ok(out)
}

/// /proc/<pid>/cgroup as controllers ("cpu", "name=systemd") -> (hierarchy id, path).
fn cgroups_of(pid: &str) -> Result<HashMap<String, (String, String)>> {
    let f = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {f}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (id, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            (!ctrls.is_empty()).then(|| (ctrls.to_string(), (id.to_string(), path.to_string())))
        })
        .collect())
}

/// The tmpfs at `dest` and a bind of each hierarchy's cgroup dir (plus one
/// per co-mounted controller), with libcontainer's options.
fn emulated(dest: &Path, hierarchies: &[(PathBuf, PathBuf)]) -> Result<Vec<Mount>> {
    let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let tmpfs = MountBuilder::default().destination(dest).typ("tmpfs").source("tmpfs").options(opts(&["noexec", "nosuid", "nodev", "mode=755"])).build()?;
    let mut out = vec![tmpfs];
    for (point, source) in hierarchies {
        let name = point.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let names = std::iter::once(name).chain(name.split(',').filter(|_| name.contains(',')));
        for n in names {
            out.push(MountBuilder::default().destination(dest.join(n)).typ("bind").source(source).options(opts(&["rw", "rbind"])).build()?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comounted_hierarchy_is_bound_once_per_name() {
        let h = [
            (PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/pod/c1")),
            (PathBuf::from("/sys/fs/cgroup/memory"), PathBuf::from("/sys/fs/cgroup/memory/pod/c1")),
        ];
        let m = emulated(Path::new("/sys/fs/cgroup"), &h).unwrap();
        let got: Vec<(String, String, String)> = m
            .iter()
            .map(|m| {
                let src = m.source().as_ref().map(|s| s.display().to_string()).unwrap_or_default();
                (m.destination().display().to_string(), m.typ().clone().unwrap_or_default(), src)
            })
            .collect();
        let want = [
            ("/sys/fs/cgroup", "tmpfs", "tmpfs"),
            ("/sys/fs/cgroup/cpu,cpuacct", "bind", "/sys/fs/cgroup/cpu,cpuacct/pod/c1"),
            ("/sys/fs/cgroup/cpu", "bind", "/sys/fs/cgroup/cpu,cpuacct/pod/c1"),
            ("/sys/fs/cgroup/cpuacct", "bind", "/sys/fs/cgroup/cpu,cpuacct/pod/c1"),
            ("/sys/fs/cgroup/memory", "bind", "/sys/fs/cgroup/memory/pod/c1"),
        ];
        assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
        assert!(m[1..].iter().all(|m| m.options().as_deref() == Some(&["rw".to_string(), "rbind".to_string()][..])));
    }
}
