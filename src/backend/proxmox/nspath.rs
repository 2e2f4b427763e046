//! Namespace paths (`linux.namespaces[].path`) checked at create, before
//! any side effect: the file must exist and be a namespace of the type the
//! entry names. LXC's `lxc.namespace.share.*` would join whatever it is
//! given (it calls `setns` with no type), so an ipc namespace named as the
//! network one would silently be joined as the wrong kind. runc's nsexec
//! fails there with "failed to setns into net namespace: Invalid argument"
//! (`setns(fd, CLONE_NEWNET)` on an ipc namespace); nexcage says the same.

use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};
use nexcage_pve::mapping::NamespaceShare;

/// `ioctl(NS_GET_NSTYPE)` (linux/nsfs.h, `_IO(0xb7, 0x3)`): the
/// `CLONE_NEW*` flag of a namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// The `CLONE_NEW*` flag of an LXC namespace name.
fn clone_flag(kind: &str) -> Option<libc::c_int> {
    Some(match kind {
        "net" => libc::CLONE_NEWNET,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "pid" => libc::CLONE_NEWPID,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "mnt" => libc::CLONE_NEWNS,
        "user" => libc::CLONE_NEWUSER,
        _ => return None,
    })
}

/// Fails unless every share's path is a namespace of its kind.
pub fn check(shares: &[NamespaceShare]) -> Result<()> {
    for s in shares {
        let f = std::fs::File::open(&s.path).with_context(|| format!("failed to open namespace path {}", s.path))?;
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd,
        // which `f` keeps open for the call.
        let got = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
        let want = clone_flag(&s.kind).with_context(|| format!("unknown namespace kind {}", s.kind))?;
        if got != want {
            let what = match name(got) {
                _ if got < 0 => "not a namespace file".to_string(),
                n if n.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {n} namespace"),
                n => format!("a {n} namespace"),
            };
            bail!("failed to setns into {} namespace: {} ({} is {what})", s.kind, std::io::Error::from_raw_os_error(libc::EINVAL), s.path);
        }
    }
    Ok(())
}

fn name(flag: libc::c_int) -> &'static str {
    ["net", "ipc", "uts", "pid", "cgroup", "mnt", "user"].into_iter().find(|k| clone_flag(k) == Some(flag)).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(kind: &str, path: &str) -> NamespaceShare {
        NamespaceShare { kind: kind.into(), path: path.into() }
    }

    #[test]
    fn the_type_must_match() {
        assert!(check(&[share("net", "/proc/self/ns/net"), share("ipc", "/proc/self/ns/ipc")]).is_ok());
        let e = check(&[share("net", "/proc/self/ns/ipc")]).unwrap_err().to_string();
        assert!(e.starts_with("failed to setns into net namespace: Invalid argument"), "{e}");
        assert!(e.contains("/proc/self/ns/ipc is an ipc namespace"), "{e}");
        assert!(check(&[share("net", "/proc/self/no-such")]).is_err());
        assert!(check(&[share("net", "/etc/hostname")]).unwrap_err().to_string().contains("not a namespace file"));
    }
}
