//! `linux.sysctl`, written by create into the guest's namespaces once its
//! init waits for start. LXC's `lxc.sysctl.*` are written after
//! `proc:mixed` has made /proc/sys read-only ("Read-only file system"), so
//! nexcage writes them itself, as runc does before the container's
//! process: a thread in the guest's network, IPC and UTS namespaces writes
//! `/proc/sys/<key>` (the host's procfs shows the writer's namespaces).
//! IPC sysctls belong to the root of the IPC namespace's user namespace
//! (kernel ipc/ipc_sysctl.c `ipc_permissions`; host root is "other"
//! there): the thread writes them with that uid as its effective uid.
//! Which keys are allowed (namespaced ones, runc's rule) is the mapping's.

use anyhow::{Context, Result};

use super::in_guest;

/// The namespaces of `init` a thread joins to write `sysctls`: only
/// the guest's own (the mapping refuses a namespaced key for a kept one).
pub fn apply(init: i32, sysctls: &[(String, String)]) -> Result<()> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let own = |kind: &str| std::fs::read_link(format!("/proc/{init}/ns/{kind}")).ok() != std::fs::read_link(format!("/proc/self/ns/{kind}")).ok();
    let kinds: Vec<&str> = ["net", "ipc", "uts"].into_iter().filter(|k| own(k)).collect();
    // A namespace joined by path may be the host's own (runc's checkHostNs):
    // never write the host's settings.
    for (k, _) in sysctls {
        let kind = ns_of(k);
        if !kinds.contains(&kind) {
            anyhow::bail!("linux.sysctl: sysctl {k:?} not allowed in host {} namespace", if kind == "net" { "network" } else { kind });
        }
    }
    let ipc_root = guest_root(init);
    in_guest::run(init, &kinds, || {
        for (k, v) in sysctls {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            let ipc = ns_of(k) == "ipc";
            let as_uid = if ipc { ipc_root } else { 0 };
            set_thread_euid(as_uid)?;
            let written = std::fs::write(&path, v);
            set_thread_euid(0)?;
            written.with_context(|| format!("linux.sysctl: cannot set {k} to {v:?} ({path})"))?;
        }
        Ok(())
    })
}

/// The namespace a (namespaced) sysctl belongs to.
fn ns_of(key: &str) -> &'static str {
    if key.starts_with("net.") {
        "net"
    } else if key == "kernel.domainname" || key == "kernel.hostname" {
        "uts"
    } else {
        "ipc"
    }
}

/// The host uid of the guest's root (`/proc/<init>/uid_map`), 0 for a
/// guest in the host's ids.
fn guest_root(init: i32) -> u32 {
    let map = std::fs::read_to_string(format!("/proc/{init}/uid_map")).unwrap_or_default();
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3 && f[0] == 0).then_some(f[1])
        })
        .next()
        .unwrap_or(0)
}

/// Sets the calling thread's effective uid only (the raw syscall: glibc's
/// `setresuid` would change every thread). Real and saved uid stay 0, so
/// the thread can switch back and keeps its permitted capabilities.
fn set_thread_euid(uid: u32) -> Result<()> {
    let keep = libc::uid_t::MAX; // -1: unchanged
    // SAFETY: setresuid takes three integers and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, keep, uid, keep) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("set the thread's effective uid to {uid}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_belong_to_their_namespace() {
        assert_eq!(ns_of("net.ipv4.ip_forward"), "net");
        assert_eq!(ns_of("kernel.shmmax"), "ipc");
        assert_eq!(ns_of("fs.mqueue.msg_max"), "ipc");
        assert_eq!(ns_of("kernel.domainname"), "uts");
        // A guest in the host's network namespace gets no net.* write.
        let self_pid = i32::try_from(std::process::id()).unwrap();
        let e = apply(self_pid, &[("net.ipv4.ip_forward".into(), "1".into())]).unwrap_err();
        assert!(e.to_string().contains("not allowed in host network namespace"), "{e}");
    }
}
