//! Filesystem access confined to a root directory.
//!
//! Paths from layers are first cleaned lexically (no `..`, leading `/`
//! dropped), then their parent is resolved the way a chroot would see it:
//! symlinks are followed, but an absolute target or `..` can never climb
//! above the root. The resolved path is then opened one component at a time
//! with `O_NOFOLLOW`, so a symlink swapped in after resolution makes the
//! operation fail instead of escaping.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

const MAX_LINKS: usize = 40;

pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// Lexically clean an archive path. `Err` carries the reason it is refused.
pub fn clean_entry_path(p: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err("path contains '..'"),
            Component::Prefix(_) => return Err("path has a prefix"),
        }
    }
    Ok(out)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn at(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.to_path_buf()
        }
    }

    /// Resolve `rel` inside the root, following symlinks in every component
    /// (and in the last one too if `follow_last`). The result has no `..`
    /// and, at the time of the call, no symlinks except possibly the last.
    pub fn resolve(&self, rel: &Path, follow_last: bool) -> io::Result<PathBuf> {
        let mut out: Vec<OsString> = Vec::new();
        let mut pending: VecDeque<OsString> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect();
        let mut links = 0;
        let mut missing = false;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                out.pop();
                continue;
            }
            if c == "." || c.is_empty() {
                continue;
            }
            out.push(c);
            if missing || (pending.is_empty() && !follow_last) {
                continue;
            }
            let cur: PathBuf = out.iter().collect();
            match rustix::fs::statat(&self.fd, &cur, AtFlags::SYMLINK_NOFOLLOW) {
                Err(rustix::io::Errno::NOENT) => missing = true,
                Err(e) => return Err(e.into()),
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(
                            rustix::io::Errno::LOOP.raw_os_error(),
                        ));
                    }
                    let target = rustix::fs::readlinkat(&self.fd, &cur, Vec::new())?;
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    out.pop();
                    if target.is_absolute() {
                        out.clear();
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => pending.push_front(n.to_os_string()),
                            Component::ParentDir => pending.push_front(OsString::from("..")),
                            _ => {}
                        }
                    }
                }
                Ok(_) => {}
            }
        }
        Ok(out.iter().collect())
    }

    /// Open directory `rel` (already resolved) by walking it with
    /// O_NOFOLLOW; missing components are created 0755 when `create`.
    pub fn open_dir(&self, rel: &Path, create: bool) -> io::Result<OwnedFd> {
        let mut cur = rustix::fs::openat(&self.fd, ".", dir_flags(), Mode::empty())?;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unresolved path component",
                ));
            };
            let next = match rustix::fs::openat(&cur, name, dir_flags(), Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(&cur, name, dir_flags(), Mode::empty())?
                }
                r => r?,
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Resolve the parent of `rel` and open it: returns (dir fd, resolved
    /// path of the entry, final name).
    pub fn parent_of(&self, rel: &Path, create: bool) -> io::Result<(OwnedFd, PathBuf, OsString)> {
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_os_string();
        let parent = self.resolve(rel.parent().unwrap_or(Path::new("")), true)?;
        let fd = self.open_dir(&parent, create)?;
        Ok((fd, parent.join(&name), name))
    }

    /// Open a regular file for reading, resolving symlinks within the root.
    pub fn open_file(&self, rel: &Path) -> io::Result<std::fs::File> {
        let p = self.resolve(rel, true)?;
        let (dir, _, name) = self.parent_of(&p, false)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(std::fs::File::from(fd))
    }

    /// lstat relative to the root.
    pub fn lstat(&self, rel: &Path) -> io::Result<rustix::fs::Stat> {
        Ok(rustix::fs::statat(
            &self.fd,
            self.at(rel),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }
}

/// Remove `name` in `dir` whatever it is; directories recursively, never
/// following symlinks. Missing is fine.
pub fn remove_all(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        r => r?,
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?;
        for child in list_dir(&sub)? {
            remove_all(&sub, &child)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Names in a directory, without `.` and `..`.
pub fn list_dir(dir: impl AsFd) -> io::Result<Vec<OsString>> {
    let mut d = rustix::fs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

pub fn is_dir_at(dir: impl AsFd, name: &OsStr) -> io::Result<Option<bool>> {
    match rustix::fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
        Ok(st) => Ok(Some(
            FileType::from_raw_mode(st.st_mode) == FileType::Directory,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_entry_path(Path::new("/etc/passwd")).unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            clean_entry_path(Path::new("./a/./b/")).unwrap(),
            PathBuf::from("a/b")
        );
        assert!(clean_entry_path(Path::new("a/../../etc")).is_err());
    }

    #[test]
    fn resolve_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", d.path().join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", d.path().join("dots")).unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        let r = Root::open(d.path()).unwrap();
        assert_eq!(
            r.resolve(Path::new("up/etc/x"), true).unwrap(),
            PathBuf::from("etc/x")
        );
        assert_eq!(
            r.resolve(Path::new("dots/etc"), true).unwrap(),
            PathBuf::from("etc")
        );
        assert_eq!(
            r.resolve(Path::new("up"), false).unwrap(),
            PathBuf::from("up")
        );
        assert_eq!(r.resolve(Path::new("up"), true).unwrap(), PathBuf::from(""));
    }
}
