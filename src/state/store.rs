//! The state root and its per-container locked directories.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::{id, BackendKind, Record, StateError};

const STATE: &str = "state.json";
const LOCK: &str = "lock";

/// The `--root` directory.
pub struct Store {
    root: PathBuf,
}

/// A container directory held under its exclusive lock. Dropping it unlocks.
#[derive(Debug)]
pub struct Locked {
    pub id: String,
    pub dir: PathBuf,
    _lock: File,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .with_context(|| format!("cannot create state root {}", root.display()))?;
        Ok(Store { root: root.to_path_buf() })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the directory of a new container and returns it locked.
    /// The directory is assembled under a temporary name and renamed into
    /// place, so no other command ever sees it without its lock file.
    pub fn create(&self, cid: &str) -> Result<Locked> {
        id::validate(cid)?;
        let target = self.dir(cid);
        if target.exists() {
            return Err(StateError::AlreadyExists { id: cid.to_string() }.into());
        }
        let tmp = self.root.join(format!(".new-{}-{}", std::process::id(), cid.len()));
        let _ = fs::remove_dir_all(&tmp);
        fs::DirBuilder::new().mode(0o711).create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let lock = OpenOptions::new().create(true).write(true).truncate(false).open(tmp.join(LOCK))?;
        lock.lock()?;
        match fs::rename(&tmp, &target) {
            Ok(()) => Ok(Locked { id: cid.to_string(), dir: target, _lock: lock }),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) {
                    return Err(StateError::AlreadyExists { id: cid.to_string() }.into());
                }
                if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
                    bail!("container id {cid:?} is too long for a directory name on this filesystem")
                }
                Err(anyhow!(e).context(format!("cannot create state for {cid}")))
            }
        }
    }

    /// Locks an existing container, or says it does not exist.
    pub fn lock(&self, cid: &str) -> Result<Locked> {
        id::validate(cid)?;
        let dir = self.dir(cid);
        let missing = || anyhow::Error::from(StateError::DoesNotExist { id: cid.to_string() });
        let lock_path = dir.join(LOCK);
        loop {
            let file = match File::open(&lock_path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Err(missing()),
                Err(e) => return Err(e).context(format!("cannot open lock of {cid}")),
            };
            file.lock()?;
            // A delete may have removed the directory while we waited:
            // the lock is only ours if the path still names the same file.
            let held = file.metadata()?;
            match fs::metadata(&lock_path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {
                    return Ok(Locked { id: cid.to_string(), dir, _lock: file });
                }
                Ok(_) => continue,
                Err(_) => return Err(missing()),
            }
        }
    }

    /// Ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.root)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().join(LOCK).exists() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Who owns container `cid`'s state directory, as `runc list` names
    /// it (list.go): the user name of its uid, `#<uid>` when the uid has
    /// none; None when the directory cannot be examined (deleted meanwhile).
    pub fn owner(&self, cid: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let uid = fs::metadata(self.root.join(cid)).ok()?.uid();
        Some(match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name,
            _ => format!("#{uid}"),
        })
    }
}

impl Drop for Locked {
    /// Unlocks explicitly: a container process cloned during create shares
    /// the lock's open file description until it execs, and closing our fd
    /// alone would leave the lock held by it.
    fn drop(&mut self) {
        let _ = self._lock.unlock();
    }
}

impl Locked {
    /// The record, or "does not exist" when create never got as far as writing it.
    pub fn load(&self) -> Result<Record> {
        let p = self.dir.join(STATE);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::DoesNotExist { id: self.id.clone() }.into())
            }
            Err(e) => return Err(e).context(format!("cannot read {}", p.display())),
        };
        serde_json::from_slice(&data).with_context(|| format!("corrupt state file {}", p.display()))
    }

    /// Writes the record atomically (temp file, rename). Proxmox records are
    /// fsynced first (the guest outlives a host crash); native containers die
    /// with the host, so like runc/crun their state is not synced: that fsync
    /// cost ~0.3 ms per save on the lifecycle hot path (BENCHMARKS.md).
    pub fn save(&self, rec: &Record) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(rec)?)?;
        if rec.backend != BackendKind::Native {
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(STATE))?;
        Ok(())
    }

    /// Removes the container directory. It is first renamed out of the way so
    /// waiters see "does not exist" rather than a half-removed tree.
    pub fn remove(self) -> Result<()> {
        // The directory goes away under our lock; Drop unlocks afterwards.
        let parent = self.dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let grave = parent.join(format!(".del-{}-{}", std::process::id(), self.id.len()));
        fs::rename(&self.dir, &grave)
            .with_context(|| format!("cannot remove state of {}", self.id))?;
        fs::remove_dir_all(&grave).with_context(|| format!("cannot remove {}", grave.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
            oci_version: "1.0.2".into(),
            id: id.into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            owner: String::new(),
            annotations: Default::default(),
            backend: super::super::BackendKind::Native,
            routed_by: "default".into(),
            pid: None,
            pid_start: None,
            monitor_pid: None,
            started: false,
            paused: false,
            backend_data: crate::backend::BackendData::Native,
        }
    }

    #[test]
    fn create_save_load_remove() {
        let d = tempdir();
        let s = Store::open(&d).unwrap();
        let l = s.create("c1").unwrap();
        l.save(&rec("c1")).unwrap();
        assert!(s.create("c1").unwrap_err().to_string().contains("already exists"));
        drop(l);
        let l = s.lock("c1").unwrap();
        assert_eq!(l.load().unwrap().id, "c1");
        l.remove().unwrap();
        assert!(s.lock("c1").unwrap_err().to_string().contains("does not exist"));
        assert!(s.ids().unwrap().is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rejects_bad_id_before_touching_disk() {
        let d = tempdir();
        let s = Store::open(&d).unwrap();
        assert!(s.create("../evil").is_err());
        assert!(s.lock("a/b").is_err());
        assert!(s.ids().unwrap().is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("nexcage-store-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&d);
        d
    }
}
