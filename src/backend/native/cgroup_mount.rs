//! The cgroup filesystems must be visible at /sys/fs/cgroup in nexcage's
//! mount namespace: libcontainer finds the cgroup setup there. `ip netns
//! exec NS` runs its command in a new mount namespace with a fresh /sys
//! (iproute2's netns.c remounts sysfs for the namespace's devices), where
//! nothing is mounted under /sys/fs/cgroup; libcontainer then says only
//! "failed to detect cgroup setup". `nsenter --net=/run/netns/NS` enters
//! the network namespace alone and keeps the mounts.

use anyhow::{bail, Result};

/// The mount points of cgroup (v1) and cgroup2 filesystems in
/// /proc/self/mountinfo (field 5; the type after the " - " separator).
fn cgroup_mounts(mountinfo: &str) -> Vec<&str> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| pre.split(' ').nth(4)).flatten()
        })
        .collect()
}

/// Fails with the cause and the workaround when no cgroup filesystem is
/// mounted under /sys/fs/cgroup (asked after a failed build, so a create
/// that works never reads mountinfo for it).
pub fn check() -> Result<()> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Ok(()) };
    if cgroup_mounts(&info).iter().any(|m| m.starts_with("/sys/fs/cgroup")) {
        return Ok(());
    }
    let ns = netns_name().map(|n| format!("/run/netns/{n}")).unwrap_or_else(|| "/run/netns/NAME".into());
    bail!(
        "no cgroup filesystem is mounted under /sys/fs/cgroup in this mount namespace (`ip netns exec` remounts /sys and hides it): \
         run nexcage in a network namespace with `nsenter --net={ns} nexcage ...` instead"
    )
}

/// The name under /run/netns (iproute2's bind mounts) of the network
/// namespace nexcage runs in, if it has one there.
fn netns_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net").ok()?;
    std::fs::read_dir("/run/netns").ok()?.flatten().find_map(|e| {
        let m = std::fs::metadata(e.path()).ok()?;
        (m.dev() == own.dev() && m.ino() == own.ino()).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_cgroup_mounts_only() {
        let info = "25 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n\
                    30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                    31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    70 49 0:39 / /run/cg-hugetlb rw - cgroup cgroup rw,hugetlb\n";
        assert_eq!(super::cgroup_mounts(info), ["/sys/fs/cgroup/memory", "/run/cg-hugetlb"]);
        assert_eq!(super::cgroup_mounts("40 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"), ["/sys/fs/cgroup"]);
    }
}
