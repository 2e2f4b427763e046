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
    /// The LXC path the node's guests live under (PVE: `/var/lib/lxc`);
    /// `PVE_DOUBLE_LXC_PATH`, else `DIR/lxc-path` (written by
    /// `serve --lxc-path`), else `/var/lib/lxc`.
    pub lxc_path: PathBuf,
    /// Start runs `lxc-start` (`PVE_DOUBLE_REAL_START=1` or `DIR/real-start`,
    /// written by `serve --real-start`); otherwise start only marks the guest.
    pub real_start: bool,
}

/// Default LXC path of a node (PROXMOX-FACTS §8, §10).
pub const DEFAULT_LXC_PATH: &str = "/var/lib/lxc";

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

/// Write a file the way pmxcfs users do: `<file>.tmp.<pid>` then rename
/// (readers never see half a file). Not fsynced: the double's state need
/// not outlive a host crash (no test crashes the host), and a sync per
/// write put the test disk's flush (~0.35 ms) into every API call the
/// benchmarks time, which is neither nexcage's cost nor a node's.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    File::create(&tmp)?.write_all(data)?;
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
        let lxc_path = std::env::var_os("PVE_DOUBLE_LXC_PATH")
            .map(PathBuf::from)
            .or_else(|| {
                fs::read_to_string(dir.join("lxc-path"))
                    .ok()
                    .map(|s| PathBuf::from(s.trim()))
            })
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LXC_PATH));
        let real_start = std::env::var("PVE_DOUBLE_REAL_START").is_ok_and(|v| v == "1")
            || dir.join("real-start").exists();
        Ok(State {
            dir: dir.to_path_buf(),
            node,
            lxc_path,
            real_start,
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

    /// `<lxcpath>/<vmid>`, the guest's LXC dir.
    pub fn lxc_dir(&self, vmid: u32) -> PathBuf {
        self.lxc_path.join(vmid.to_string())
    }

    /// Running when LXC's command socket is there (PROXMOX-FACTS §10) or
    /// the double itself "started" the guest (`run/<vmid>`, no real LXC).
    pub fn is_running(&self, vmid: u32) -> bool {
        crate::lxc::socket_running(&self.lxc_path, vmid) || self.flagged_running(vmid)
    }

    /// The double's own running flag (`run/<vmid>`).
    pub fn flagged_running(&self, vmid: u32) -> bool {
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
