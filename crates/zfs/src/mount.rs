//! Where a dataset is mounted, from the kernel's mount table
//! (`/proc/self/mountinfo`), and its lazy unmount: what zfs-fuse's `zfs
//! unmount -f` does before a destroy, without a `zfs` process, a round
//! trip to the daemon and an `umount -l` process (10-25 ms on zfs-fuse).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A ZFS mount of the kernel's table: where, and whether zfs-fuse serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: PathBuf,
    /// `fuse.zfs` (zfs-fuse), not the kernel module's `zfs`.
    pub fuse: bool,
    /// The minor of the mount's device (mountinfo's `major:minor`): for a
    /// FUSE mount, its connection's number (`/sys/fs/fuse/connections/N`).
    pub minor: u32,
}

/// The mount of dataset `name` in this process's mount namespace, if any:
/// the entry whose source is `name` and whose type is `zfs` or `fuse.zfs`
/// (proc(5), `/proc/[pid]/mountinfo`: fields after ` - ` are type, source,
/// options). With several (bind copies), the first.
pub fn find(name: &str) -> Option<Mount> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find_in(&table, name)
}

fn find_in(table: &str, name: &str) -> Option<Mount> {
    table.lines().find_map(|l| {
        let (head, tail) = l.split_once(" - ")?;
        let mut t = tail.split(' ');
        let (fstype, source) = (t.next()?, t.next()?);
        let fuse = match fstype {
            "zfs" => false,
            "fuse.zfs" => true,
            _ => return None,
        };
        if unescape(source) != name {
            return None;
        }
        let mut h = head.split(' ');
        let minor = h.nth(2)?.split_once(':')?.1.parse().ok()?;
        let path = unescape(h.nth(1)?);
        Some(Mount { path: PathBuf::from(path), fuse, minor })
    })
}

/// mountinfo's octal escapes (`\040` for a blank, `\134` for `\`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches the mount at `path` (`umount2(path, MNT_DETACH)`), as
/// zfs-fuse's `zfs unmount -f` does by running `umount -l`.
pub fn detach(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The kernel's unique id of the mount whose root is `path` (`statx(2)`
/// with `STATX_MNT_ID_UNIQUE`, Linux 6.8): unlike mountinfo's mount ID,
/// never given to another mount while the system runs, so a later
/// `unique_id` of the same value names the same mount. None when `path`
/// is not the root of a mount (`STATX_ATTR_MOUNT_ROOT`), cannot be
/// examined, or the kernel gives no unique id. Cached attributes will do
/// (`AT_STATX_DONT_SYNC`): the id and the mount-root flag are the VFS's,
/// so no request reaches a FUSE daemon for them.
pub fn unique_id(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: a NUL-terminated path and a buffer of the struct statx
    // writes, both valid for the duration of the call.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC, libc::STATX_MNT_ID_UNIQUE, st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statx returned 0, so it filled the (zero-initialised) buffer.
    let st = unsafe { st.assume_init() };
    let root = libc::STATX_ATTR_MOUNT_ROOT as u64;
    let is_root = st.stx_attributes_mask & root != 0 && st.stx_attributes & root != 0;
    (st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0 && is_root).then_some(st.stx_mnt_id)
}

/// How long [`Release::detach`] waits for zfs-fuse to let go of a
/// detached filesystem (it takes 5-10 ms: the unmount syncs a txg).
const RELEASE_WAIT: Duration = Duration::from_millis(200);

/// A zfs-fuse mount and the daemon's fd of its FUSE connection, looked up
/// ([`Release::find`]: a scan of `/proc` and of the daemon's fds) ahead of
/// [`Release::detach`], so that a caller can look while it waits for
/// something else.
#[derive(Debug)]
pub struct Release {
    mount: Mount,
    /// (daemon pid, fd name) of the mount's connection.
    held: Option<(i32, String)>,
}

impl Release {
    /// Looks up the daemon's fd of `m`'s connection (none found: the
    /// detach will not wait).
    pub fn find(m: Mount) -> Release {
        let held = daemon_pid().and_then(|pid| connection_fd(pid, m.minor).map(|fd| (pid, fd)));
        Release { mount: m, held }
    }

    /// The mount looked up.
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    /// Detaches the mount ([`detach`]), then waits (up to
    /// [`RELEASE_WAIT`]) until the daemon has torn the filesystem down: it
    /// does so after the kernel's unmount, on its own thread, and a destroy
    /// that comes first fails "dataset is busy" (measured: every delete
    /// that destroyed right after the unmount, a failed `zfs` run and a
    /// pause each). The daemon closes its `/dev/fuse` fd of the mount's
    /// connection (its fdinfo's `fuse_connection`) once done. When the
    /// daemon or that fd was not found, only the wait is skipped (the
    /// destroy's retry stays the guarantee).
    pub fn detach(&self) -> std::io::Result<()> {
        detach(&self.mount.path)?;
        if let Some((pid, fd)) = &self.held {
            let deadline = Instant::now() + RELEASE_WAIT;
            while connection_of(*pid, fd) == Some(self.mount.minor) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        Ok(())
    }
}

/// The zfs-fuse daemon's pid: the process named `zfs-fuse` (its socket's
/// peer credentials name the process that created it before the daemon
/// forked).
fn daemon_pid() -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        (std::fs::read(format!("/proc/{pid}/comm")).ok()?.as_slice() == b"zfs-fuse\n").then_some(pid)
    })
}

/// The fd of process `pid` open on FUSE connection `conn`.
fn connection_fd(pid: i32, conn: u32) -> Option<String> {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|fd| connection_of(pid, fd) == Some(conn))
}

/// The FUSE connection fd `fd` of `pid` is open on (None: closed, or not
/// a `/dev/fuse` fd).
fn connection_of(pid: i32, fd: &str) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    info.lines().find_map(|l| l.strip_prefix("fuse_connection:")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "61 27 0:52 / /var/tmp/px/mnt rw,relatime - fuse.zfs tank rw,user_id=0\n\
        62 61 0:53 / /var/tmp/px/mnt/data rw,relatime - fuse.zfs tank/data rw,user_id=0\n\
        70 62 0:60 / /var/tmp/px/mnt/a\\040b/subvol-1-disk-0 rw - zfs tank/data/subvol-1-disk-0 rw,xattr\n\
        71 27 0:61 / /srv/other rw - ext4 tank/data/subvol-2-disk-0 rw\n";

    #[test]
    fn unique_id_names_mount_roots_only() {
        // `/proc` is a mount root on every Linux; a file under it is not.
        // Kernels before 6.8 give no unique id: then neither has one.
        let proc_id = unique_id(Path::new("/proc"));
        assert_eq!(unique_id(Path::new("/proc/self/status")), None);
        if let Some(id) = proc_id {
            assert_eq!(unique_id(Path::new("/proc")), Some(id));
            if let Some(sys) = unique_id(Path::new("/sys")) {
                assert_ne!(sys, id);
            }
        }
    }

    #[test]
    fn finds_a_datasets_mount_by_source() {
        assert_eq!(find_in(TABLE, "tank/data"), Some(Mount { path: "/var/tmp/px/mnt/data".into(), fuse: true, minor: 53 }));
        assert_eq!(find_in(TABLE, "tank/data/subvol-1-disk-0"), Some(Mount { path: "/var/tmp/px/mnt/a b/subvol-1-disk-0".into(), fuse: false, minor: 60 }));
        assert_eq!(find_in(TABLE, "tank/dat"), None);
        assert_eq!(find_in(TABLE, "tank/data/subvol-2-disk-0"), None, "not a ZFS mount");
    }
}
