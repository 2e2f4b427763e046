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

/// Adds `root` to the registry in `data_dir` unless it is there already
/// (under an exclusive flock, so concurrent creates do not lose lines).
pub fn record(data_dir: &Path, root: &Path) -> Result<()> {
    let path = data_dir.join(FILE);
    if list(data_dir).iter().any(|r| r == root) {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).read(true).open(&path).with_context(|| format!("open {}", path.display()))?;
    // Released when `f` closes.
    f.lock().with_context(|| format!("flock {}", path.display()))?;
    if list(data_dir).iter().any(|r| r == root) {
        return Ok(());
    }
    writeln!(f, "{}", root.display()).with_context(|| format!("write {}", path.display()))
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
}
