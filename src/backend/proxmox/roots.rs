//! The registry of state roots: every `--root` a Proxmox-backend create
//! used on this host, one absolute path a line, in `<data dir>/roots`
//! (`/var/lib/nexcage/roots` by default: it must survive reboots, since gc
//! runs at boot, when the roots under /run are gone). gc looks for
//! containers in each of them (containerd's shim uses
//! `/run/containerd/runc/<namespace>`, not nexcage's default root).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const FILE: &str = "roots";

/// Adds `root` to the registry in `data_dir` unless it is there already,
/// always under the registry's exclusive flock: concurrent creates do not
/// lose lines, and [`prune`] cannot drop a root between this check and
/// the container's state appearing in it (the caller's state dir exists
/// before it calls this).
pub fn record(data_dir: &Path, root: &Path) -> Result<()> {
    let path = data_dir.join(FILE);
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).read(true).open(&path).with_context(|| format!("open {}", path.display()))?;
    // Released when `f` closes.
    f.lock().with_context(|| format!("flock {}", path.display()))?;
    if list(data_dir).iter().any(|r| r == root) {
        return Ok(());
    }
    writeln!(f, "{}", root.display()).with_context(|| format!("write {}", path.display()))
}

/// Drops from the registry every root that holds no container state (it
/// is gone, or has no entry but dot files) and for which `needed` says
/// no (gc passes: no guest's owner record names it). Under the registry's
/// flock, so a concurrent [`record`] is never lost. Returns the roots
/// dropped.
pub fn prune(data_dir: &Path, needed: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let path = data_dir.join(FILE);
    let f = match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    f.lock().with_context(|| format!("flock {}", path.display()))?;
    let (keep, drop): (Vec<PathBuf>, Vec<PathBuf>) = list(data_dir).into_iter().partition(|r| needed(r) || holds_state(r));
    if drop.is_empty() {
        return Ok(drop);
    }
    // Rewritten in place (not renamed over): a `record` waiting for the
    // lock holds this same file open.
    let text: String = keep.iter().map(|r| format!("{}\n", r.display())).collect();
    f.set_len(0).and_then(|()| {
        use std::io::{Seek, SeekFrom};
        let mut w = &f;
        w.seek(SeekFrom::Start(0))?;
        w.write_all(text.as_bytes())?;
        w.sync_all()
    })
    .with_context(|| format!("rewrite {}", path.display()))?;
    Ok(drop)
}

/// Whether `root` may hold a container: it exists and has an entry that is
/// not a dot file (state dirs are named by container ids).
fn holds_state(root: &Path) -> bool {
    match std::fs::read_dir(root) {
        Ok(d) => d.flatten().any(|e| !e.file_name().to_string_lossy().starts_with('.')),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// The registered roots (none if the file does not exist).
pub fn list(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(data_dir.join(FILE))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_root_once() {
        let d = std::env::temp_dir().join(format!("nx-roots-{}", std::process::id()));
        record(&d, Path::new("/run/nexcage")).unwrap();
        record(&d, Path::new("/run/containerd/runc/k8s.io")).unwrap();
        record(&d, Path::new("/run/nexcage")).unwrap();
        assert_eq!(list(&d), vec![PathBuf::from("/run/nexcage"), PathBuf::from("/run/containerd/runc/k8s.io")]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn prunes_only_empty_unneeded_roots() {
        let d = std::env::temp_dir().join(format!("nx-roots-prune-{}", std::process::id()));
        let (busy, empty, needed, gone) = (d.join("busy"), d.join("empty"), d.join("needed"), d.join("gone"));
        for r in [&busy, &empty, &needed] {
            std::fs::create_dir_all(r).unwrap();
        }
        std::fs::create_dir(busy.join("c1")).unwrap();
        std::fs::write(empty.join(".lock"), "").unwrap();
        for r in [&busy, &empty, &needed, &gone] {
            record(&d, r).unwrap();
        }
        let dropped = prune(&d, |r| r == needed).unwrap();
        assert_eq!(dropped, vec![empty.clone(), gone.clone()]);
        assert_eq!(list(&d), vec![busy.clone(), needed.clone()]);
        record(&d, &gone).unwrap();
        assert_eq!(list(&d), vec![busy, needed, gone]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
