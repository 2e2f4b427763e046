//! What create has done so far, in `<state dir>/proxmox.json`: written
//! BEFORE each side effect, so delete (or gc) after a crash at any point
//! knows what may exist and undoes exactly that.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

const FILE: &str = "proxmox.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Last step begun (`vmid`, `dataset`, `guest`, `lxcconf`, `holder`, `done`).
    pub step: String,
    pub vmid: Option<u32>,
    /// ZFS dataset that may exist (copy/clone strategies).
    pub dataset: Option<String>,
    /// `copy`, `clone` or `bind`.
    pub strategy: Option<String>,
    /// Where the guest's rootfs is (dataset mountpoint or the bundle's rootfs).
    pub rootfs: Option<PathBuf>,
    /// The guest may be registered with the control plane.
    pub guest: bool,
    /// `<lxc_path>`; the LXC dir is `<lxc_path>/<vmid>`.
    pub lxc_path: Option<PathBuf>,
    pub holder: Option<i32>,
    /// The container's process (lxc-execute's command line after `--`).
    pub args: Vec<String>,
    /// Namespaces to join: `--share-<kind> <path>`.
    pub shares: Vec<(String, String)>,
    pub terminal: bool,
    /// nexcage's config file at create, and the pct/pvesh it resolved.
    #[serde(default)]
    pub config_path: Option<PathBuf>,
    #[serde(default)]
    pub pct_tools: Option<(PathBuf, PathBuf)>,
    /// Control-plane calls create made (HTTP requests or pct/pvesh runs).
    #[serde(default)]
    pub cp_calls: u64,
    /// process.user.umask, applied by the holder.
    #[serde(default)]
    pub umask: Option<u32>,
}

impl Progress {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Missing file = nothing done yet.
    pub fn load(dir: &Path) -> Result<Progress> {
        match std::fs::read(Self::path(dir)) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parse {}", Self::path(dir).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", Self::path(dir).display())),
        }
    }

    /// Atomic (temp + rename) and synced: it must survive a crash right after.
    pub fn save(&self, dir: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, Self::path(dir)).with_context(|| format!("rename {}", tmp.display()))?;
        Ok(())
    }

    /// Records that `step` is about to happen, then honours the test-only
    /// crash hook.
    pub fn begin(&mut self, dir: &Path, step: &str) -> Result<()> {
        self.step = step.to_string();
        self.save(dir)?;
        crash_hook(step);
        Ok(())
    }

    pub fn lxc_dir(&self) -> Option<PathBuf> {
        Some(self.lxc_path.as_ref()?.join(self.vmid?.to_string()))
    }
}

/// TEST ONLY: `NEXCAGE_TEST_CRASH_AT=<step>` makes create abort(2) right
/// after recording that it is about to do `<step>`, i.e. as if nexcage had
/// been killed with SIGKILL there. Used by tests/proxmox_crash.rs.
fn crash_hook(step: &str) {
    if std::env::var("NEXCAGE_TEST_CRASH_AT").ok().as_deref() == Some(step) {
        tracing::error!("NEXCAGE_TEST_CRASH_AT={step}: aborting (test hook)");
        std::process::abort();
    }
}
