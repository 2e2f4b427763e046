//! Filling a dataset from a directory tree (the `copy` rootfs strategy).

use std::path::Path;
use std::process::Command;

use crate::ZfsError;

/// Copies the contents of `src` into `dst` with `cp -a` (GNU coreutils):
/// owners, modes, timestamps, symlinks, hardlinks within the tree and
/// device nodes are preserved; xattrs are preserved when `dst`'s
/// filesystem supports them (zfs-fuse may not, and cp -a then silently
/// drops them).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), ZfsError> {
    let err = |msg: String| ZfsError::Copy { dst: dst.display().to_string(), msg };
    let mut from = src.as_os_str().to_owned();
    from.push("/.");
    let out = Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(&from)
        .arg(dst)
        .output()
        .map_err(|e| err(format!("cannot run cp: {e}")))?;
    if !out.status.success() {
        return Err(err(format!("cp -a {}: {}", src.display(), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}
