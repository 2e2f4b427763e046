//! The program a guest will run, checked at create in the bundle's rootfs
//! (as runc does before create returns): a missing one is a clear create
//! error, not a guest that starts and exits 1.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

/// `p` (absolute, in the guest's view) resolved inside `root`: symlinks,
/// absolute ones included, never leave it. None when it does not exist.
pub fn resolve(root: &Path, p: &Path) -> Option<PathBuf> {
    fn push_front(rest: &mut VecDeque<OsString>, p: &Path) {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => rest.push_front(n.to_os_string()),
                Component::ParentDir => rest.push_front("..".into()),
                _ => {}
            }
        }
    }
    let mut rest = VecDeque::new();
    push_front(&mut rest, p);
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = rest.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let cand = cur.join(&c);
        let full = root.join(&cand);
        if std::fs::symlink_metadata(&full).ok()?.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&full).ok()?;
            if target.is_absolute() {
                cur = PathBuf::new();
            }
            push_front(&mut rest, &target);
        } else {
            cur = cand;
        }
    }
    Some(root.join(cur))
}

fn executable(root: &Path, p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    resolve(root, p).and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `prog` as execve takes it: itself when it names a path, else the first
/// executable `<dir>/<prog>` of the PATH in `env` (absolute entries only,
/// as runc), looked up inside `root` (`/` from within the guest). An `env`
/// without PATH finds nothing, as runc's lookup (Go's `exec.LookPath` in
/// the process's environment), crun's and libcontainer's.
pub fn find(root: &Path, prog: &str, env: &[String]) -> Result<String> {
    if prog.contains('/') {
        return Ok(prog.to_string());
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or_default();
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{prog}", d.trim_end_matches('/')))
        .find(|p| executable(root, Path::new(p)))
        .ok_or_else(|| anyhow::anyhow!("exec: {prog:?}: executable file not found in $PATH"))
}

/// Fails like runc when `args[0]` cannot be executed in `rootfs`.
pub fn check_program(rootfs: &Path, args: &[String], env: &[String], cwd: &Path) -> Result<()> {
    let Some(prog) = args.first() else { return Ok(()) };
    let p = find(rootfs, prog, env)?;
    let full = cwd.join(p);
    if !executable(rootfs, &full) {
        // runc's words (execve's EACCES): what is there but cannot be run, a
        // file without an x bit or a directory, is "permission denied".
        let present = resolve(rootfs, &full).is_some();
        bail!("exec: {prog:?}: {}", if present { "permission denied" } else { "no such file or directory" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn finds_programs_inside_the_root_only() {
        let r = std::env::temp_dir().join(format!("nx-lookup-{}", std::process::id()));
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("bin/busybox"), "x").unwrap();
        std::fs::set_permissions(r.join("bin/busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("busybox", r.join("bin/sh")).unwrap();
        symlink("/bin/busybox", r.join("usr/bin/env")).unwrap();
        symlink("/etc/passwd", r.join("usr/bin/escape")).unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cwd = Path::new("/");
        assert!(check_program(&r, &s(&["sh"]), &s(&["PATH=/usr/bin:/bin"]), cwd).is_ok());
        assert!(check_program(&r, &s(&["env"]), &s(&["PATH=/usr/bin"]), cwd).is_ok());
        assert!(check_program(&r, &s(&["env"]), &[], cwd).unwrap_err().to_string().contains("executable file not found"), "no PATH, no lookup");
        assert!(check_program(&r, &s(&["/bin/sh"]), &[], cwd).is_ok());
        assert!(check_program(&r, &s(&["nope"]), &[], cwd).unwrap_err().to_string().contains("executable file not found"));
        assert!(check_program(&r, &s(&["escape"]), &[], cwd).is_err(), "followed a symlink out of the root");
        std::fs::write(r.join("bin/data"), "x").unwrap();
        assert!(check_program(&r, &s(&["/bin/data"]), &[], cwd).unwrap_err().to_string().contains("permission denied"));
        // A directory: runc says "permission denied" too.
        assert!(check_program(&r, &s(&["/bin"]), &[], cwd).unwrap_err().to_string().contains("permission denied"));
        assert!(check_program(&r, &s(&["/bin/none"]), &[], cwd).unwrap_err().to_string().contains("no such file or directory"));
        std::fs::remove_dir_all(&r).unwrap();
    }
}
