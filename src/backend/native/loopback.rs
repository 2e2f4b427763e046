//! Brings up `lo` in a container's new network namespace, as runc does:
//! libcontainer leaves it down, so even localhost would not work inside.

use std::fs::File;
use std::os::fd::AsRawFd;

use anyhow::{anyhow, Context, Result};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// True when the spec asks for a new network namespace (one without a path).
pub fn wants_new_netns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none()))
}

/// The network namespace of `pid` and the caller's own, to pass to [`up_in`].
pub struct Netns {
    ns: File,
    own: File,
}

pub fn netns_of(pid: i32) -> Result<Netns> {
    Ok(Netns {
        ns: File::open(format!("/proc/{pid}/ns/net")).with_context(|| format!("network namespace of {pid}"))?,
        own: File::open("/proc/thread-self/ns/net").context("own network namespace")?,
    })
}

/// Sets IFF_UP on `lo` inside the network namespace `n.ns`, which the
/// calling thread enters and leaves again (no thread of its own: see
/// `cgroupfs_ro::remount_in`).
pub fn up_in(n: &Netns) -> Result<()> {
    setns(&n.ns, CloneFlags::CLONE_NEWNET).map_err(|e| anyhow!("setns: {e}"))?;
    let done = lo_up();
    setns(&n.own, CloneFlags::CLONE_NEWNET).map_err(|e| anyhow!("setns back to the own network namespace: {e}"))?;
    done
}

/// IFF_UP on `lo` of the calling thread's network namespace.
fn lo_up() -> Result<()> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| anyhow!("socket: {e}"))?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own,
    // which lives for both calls; the fd is an open socket.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(anyhow!("SIOCGIFFLAGS lo: {}", std::io::Error::last_os_error()));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(anyhow!("SIOCSIFFLAGS lo: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
