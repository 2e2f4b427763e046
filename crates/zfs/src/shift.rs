//! Shifting a tree's owners into an unprivileged guest's id range (what
//! Proxmox gets by unpacking templates inside the guest's user namespace).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::ZfsError;

const CAP_XATTR: &[u8] = b"security.capability\0";

/// Adds `base` to the owner and group of everything under `root` (root
/// included, symlinks not followed). Ids at or past `count` become the
/// guest's `nobody` (65534). Setuid/setgid bits, which chown clears, are put
/// back, and file capabilities are rewritten as namespaced (v3) ones owned
/// by the guest's root, so they still work inside the guest.
pub fn shift_owners(root: &Path, base: u32, count: u32) -> Result<(), ZfsError> {
    let err = |p: &Path, e: std::io::Error| ZfsError::Copy { dst: root.display().to_string(), msg: format!("shift owner of {}: {e}", p.display()) };
    let map = |id: u32| base + if id < count { id } else { 65534 };
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).map_err(|e| err(&p, e))?;
        let caps = if md.is_file() { file_caps(&p) } else { None };
        std::os::unix::fs::lchown(&p, Some(map(md.uid())), Some(map(md.gid()))).map_err(|e| err(&p, e))?;
        if !md.file_type().is_symlink() && md.mode() & 0o6000 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(|e| err(&p, e))?;
        }
        if let Some(c) = caps {
            set_v3_caps(&p, &c, base);
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&p).map_err(|e| err(&p, e))? {
                stack.push(e.map_err(|e| err(&p, e))?.path());
            }
        }
    }
    Ok(())
}

fn cpath(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

/// The raw `security.capability` xattr of a file, if any.
fn file_caps(p: &Path) -> Option<Vec<u8>> {
    let c = cpath(p)?;
    let mut buf = vec![0u8; 64];
    // SAFETY: both strings are NUL-terminated and buf is writable for its length.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), CAP_XATTR.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

/// Rewrites v2 (or v3) file capabilities as v3 with `rootid` = the guest's root.
fn set_v3_caps(p: &Path, raw: &[u8], rootid: u32) {
    if raw.len() < 20 {
        return;
    }
    let magic = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let mut v3 = Vec::with_capacity(24);
    v3.extend_from_slice(&((0x0300_0000u32) | (magic & 1)).to_le_bytes());
    v3.extend_from_slice(&raw[4..20]);
    v3.extend_from_slice(&rootid.to_le_bytes());
    let Some(c) = cpath(p) else { return };
    // SAFETY: NUL-terminated strings, v3 readable for its length.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), CAP_XATTR.as_ptr().cast(), v3.as_ptr().cast(), v3.len(), 0) };
    if r != 0 {
        tracing::warn!(path = %p.display(), "file capabilities not kept: {}", std::io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn shifts_owners_and_keeps_setuid() {
        if !nix_is_root() {
            eprintln!("shifts_owners_and_keeps_setuid needs root: not run");
            return;
        }
        let d = std::env::temp_dir().join(format!("nx-shift-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/suid"), "x").unwrap();
        std::os::unix::fs::lchown(d.join("sub/suid"), Some(1000), Some(70000)).unwrap();
        std::fs::set_permissions(d.join("sub/suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/etc/passwd", d.join("link")).unwrap();
        shift_owners(&d, 100000, 65536).unwrap();
        let m = std::fs::symlink_metadata(d.join("sub/suid")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (101000, 165534, 0o4755));
        let l = std::fs::symlink_metadata(d.join("link")).unwrap();
        assert_eq!(l.uid(), 100000);
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0, "symlink followed");
        assert_eq!(std::fs::symlink_metadata(&d).unwrap().uid(), 100000);
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn nix_is_root() -> bool {
        // SAFETY: geteuid has no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
