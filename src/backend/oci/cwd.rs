//! A `process.cwd` missing from the rootfs is created (0755, owned by root),
//! as runc and crun do, instead of failing create.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Creates `cwd` (absolute, as in the spec) under `rootfs`, one component at
/// a time. A component that exists must be a directory ("mkdir CWD: not a
/// directory" otherwise, runc's words); at a symbolic link (which would
/// resolve against the host's root) nothing is made beyond it and the
/// container's own chdir decides. Returns the directories made.
pub fn ensure(rootfs: &Path, cwd: &Path) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    let mut at = rootfs.to_path_buf();
    for c in cwd.components() {
        match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(n) => at.push(n),
            Component::ParentDir | Component::Prefix(_) => bail!("process.cwd {} must not contain ..", cwd.display()),
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) if m.is_symlink() => return Ok(made), // resolved in the container, by its chdir
            Ok(_) => bail!("mkdir {}: not a directory", cwd.display()), // runc's words
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).with_context(|| format!("failed to create process.cwd {}", at.display()))?;
                made.push(at.clone());
            }
            Err(e) => return Err(e).with_context(|| format!("failed to stat {}", at.display())),
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_dirs_only() {
        let root = std::env::temp_dir().join(format!("nexcage-cwd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        let made = ensure(&root, Path::new("/a/b/c")).unwrap();
        assert_eq!(made, vec![root.join("a/b"), root.join("a/b/c")]);
        assert!(ensure(&root, Path::new("/a/b/c")).unwrap().is_empty());
        std::os::unix::fs::symlink("/etc", root.join("l")).unwrap();
        assert!(ensure(&root, Path::new("/l/x")).unwrap().is_empty());
        assert!(ensure(&root, Path::new("/a/../b")).is_err());
        std::fs::write(root.join("f"), "").unwrap();
        assert_eq!(ensure(&root, Path::new("/f/x")).unwrap_err().to_string(), "mkdir /f/x: not a directory");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
