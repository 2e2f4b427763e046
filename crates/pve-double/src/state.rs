//! The state dir, laid out like pmxcfs: `DIR/nodes/<node>/lxc/<vmid>.conf`
//! in the exact file format, written via temp file + rename. Also holds
//! tasks, storage volumes, running flags, faults and the violations log.

use nexcage_pve::conffile::{self, ConfigFile};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct State {
    pub dir: PathBuf,
    pub node: String,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Write a file the way pmxcfs users do: `<file>.tmp.<pid>` then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

impl State {
    pub fn open(dir: &Path, node: Option<&str>) -> std::io::Result<State> {
        let node = match node {
            Some(n) => n.to_string(),
            None => fs::read_to_string(dir.join("node"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "pve".into()),
        };
        fs::create_dir_all(dir.join("nodes").join(&node).join("lxc"))?;
        for d in ["tasks", "lock", "run", "storage/local-zfs", "storage/local"] {
            fs::create_dir_all(dir.join(d))?;
        }
        Ok(State {
            dir: dir.to_path_buf(),
            node,
        })
    }

    pub fn conf_path(&self, node: &str, vmid: u32) -> PathBuf {
        self.dir.join(format!("nodes/{node}/lxc/{vmid}.conf"))
    }

    /// Where a VMID is registered, on any node (cluster-wide vmlist).
    pub fn find_vmid(&self, vmid: u32) -> Option<String> {
        let nodes = fs::read_dir(self.dir.join("nodes")).ok()?;
        for n in nodes.flatten() {
            let name = n.file_name().to_string_lossy().into_owned();
            for kind in ["lxc", "qemu-server"] {
                if n.path().join(kind).join(format!("{vmid}.conf")).exists() {
                    return Some(name);
                }
            }
        }
        None
    }

    pub fn vmids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = fs::read_dir(self.dir.join(format!("nodes/{}/lxc", self.node)))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".conf")
                            .and_then(|s| s.parse().ok())
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn all_vmids(&self) -> Vec<u32> {
        let mut v = Vec::new();
        if let Ok(nodes) = fs::read_dir(self.dir.join("nodes")) {
            for n in nodes.flatten() {
                for kind in ["lxc", "qemu-server"] {
                    if let Ok(d) = fs::read_dir(n.path().join(kind)) {
                        v.extend(d.flatten().filter_map(|e| {
                            e.file_name()
                                .to_string_lossy()
                                .strip_suffix(".conf")
                                .and_then(|s| s.parse::<u32>().ok())
                        }));
                    }
                }
            }
        }
        v
    }

    pub fn read_conf(&self, vmid: u32) -> Option<ConfigFile> {
        let text = fs::read_to_string(self.conf_path(&self.node, vmid)).ok()?;
        Some(conffile::parse(&text).0)
    }

    pub fn write_conf(&self, vmid: u32, cfg: &ConfigFile) -> std::io::Result<()> {
        write_atomic(
            &self.conf_path(&self.node, vmid),
            conffile::write(cfg).as_bytes(),
        )
    }

    pub fn remove_conf(&self, vmid: u32) -> std::io::Result<()> {
        fs::remove_file(self.conf_path(&self.node, vmid))
    }

    /// An exclusive flock on `DIR/lock/<name>.lock`, held until dropped.
    pub fn lock(&self, name: &str) -> std::io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock").join(format!("{name}.lock")))?;
        f.lock()?;
        Ok(f)
    }

    pub fn is_running(&self, vmid: u32) -> bool {
        self.dir.join("run").join(vmid.to_string()).exists()
    }

    pub fn set_running(&self, vmid: u32, on: bool) -> std::io::Result<()> {
        let p = self.dir.join("run").join(vmid.to_string());
        if on {
            File::create(p).map(|_| ())
        } else {
            match fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
    }

    pub fn storage_known(&self, storage: &str) -> bool {
        self.dir.join("storage").join(storage).is_dir()
    }

    pub fn volume_path(&self, storage: &str, name: &str) -> PathBuf {
        self.dir.join("storage").join(storage).join(name)
    }

    /// Lowest free `subvol-<vmid>-disk-<n>` name on a storage.
    pub fn next_disk_name(&self, storage: &str, vmid: u32) -> String {
        (0..)
            .map(|n| format!("subvol-{vmid}-disk-{n}"))
            .find(|n| !self.volume_path(storage, n).exists())
            .unwrap_or_default()
    }

    /// Calls named in `DIR/faults` or `PVE_DOUBLE_FAULTS` (one per line or
    /// comma-separated), e.g. `POST /nodes/{node}/lxc` or `task POST /nodes/{node}/lxc`.
    pub fn fault(&self, name: &str) -> bool {
        let mut text = fs::read_to_string(self.dir.join("faults")).unwrap_or_default();
        text.push('\n');
        text.push_str(&std::env::var("PVE_DOUBLE_FAULTS").unwrap_or_default());
        text.split(['\n', ','])
            .map(str::trim)
            .any(|l| !l.is_empty() && l == name)
    }

    /// Append a schema violation (tests fail when this file is non-empty).
    pub fn record_violation(&self, call: &str, detail: &str) {
        let line = serde_json::json!({"call": call, "errors": detail}).to_string();
        let r = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("violations.log"))
            .and_then(|mut f| {
                f.lock()?;
                writeln!(f, "{line}")
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot write violations.log");
        }
    }
}
