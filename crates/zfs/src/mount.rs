//! Where a dataset is mounted, from the kernel's mount table
//! (`/proc/self/mountinfo`), and its lazy unmount: what zfs-fuse's `zfs
//! unmount -f` does before a destroy, without a `zfs` process, a round
//! trip to the daemon and an `umount -l` process (10-25 ms on zfs-fuse).

use std::path::{Path, PathBuf};

/// A ZFS mount of the kernel's table: where, and whether zfs-fuse serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: PathBuf,
    /// `fuse.zfs` (zfs-fuse), not the kernel module's `zfs`.
    pub fuse: bool,
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
        let path = unescape(head.split(' ').nth(4)?);
        Some(Mount { path: PathBuf::from(path), fuse })
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

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "61 27 0:52 / /var/tmp/px/mnt rw,relatime - fuse.zfs tank rw,user_id=0\n\
        62 61 0:53 / /var/tmp/px/mnt/data rw,relatime - fuse.zfs tank/data rw,user_id=0\n\
        70 62 0:60 / /var/tmp/px/mnt/a\\040b/subvol-1-disk-0 rw - zfs tank/data/subvol-1-disk-0 rw,xattr\n\
        71 27 0:61 / /srv/other rw - ext4 tank/data/subvol-2-disk-0 rw\n";

    #[test]
    fn finds_a_datasets_mount_by_source() {
        assert_eq!(find_in(TABLE, "tank/data"), Some(Mount { path: "/var/tmp/px/mnt/data".into(), fuse: true }));
        assert_eq!(find_in(TABLE, "tank/data/subvol-1-disk-0"), Some(Mount { path: "/var/tmp/px/mnt/a b/subvol-1-disk-0".into(), fuse: false }));
        assert_eq!(find_in(TABLE, "tank/dat"), None);
        assert_eq!(find_in(TABLE, "tank/data/subvol-2-disk-0"), None, "not a ZFS mount");
    }
}
