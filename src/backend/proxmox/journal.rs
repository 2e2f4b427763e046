//! The create journal, `<state dir>/proxmox.json`: what create has done so
//! far, written BEFORE each side effect, so delete (or gc) after a crash at
//! any point knows what may exist and undoes exactly that (`delete::undo`).
//! Later operations read the guest's coordinates (VMID, LXC dir, holder)
//! from it too.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::backend::RootfsStrategy;

const FILE: &str = "proxmox.json";

/// The step create last began, in order (written as the lowercase word,
/// `""` before the first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreateStep {
    /// Nothing done yet: nothing to undo.
    #[default]
    #[serde(rename = "")]
    NotBegun,
    /// Choosing the VMID (nothing made yet).
    Vmid,
    /// The rootfs dataset may exist.
    Dataset,
    /// The guest may be registered with the control plane.
    Guest,
    /// The LXC config dir may exist.
    #[serde(rename = "lxcconf")]
    LxcConfig,
    /// The holder process may run.
    Holder,
    /// The holder has started the guest; its init may run.
    Init,
    /// create finished.
    Done,
    /// Not from create: gc found a tagged guest no container refers to.
    Gc,
}

impl CreateStep {
    /// The word written to the journal (and matched by NEXCAGE_TEST_CRASH_AT).
    pub fn name(self) -> &'static str {
        match self {
            CreateStep::NotBegun => "",
            CreateStep::Vmid => "vmid",
            CreateStep::Dataset => "dataset",
            CreateStep::Guest => "guest",
            CreateStep::LxcConfig => "lxcconf",
            CreateStep::Holder => "holder",
            CreateStep::Init => "init",
            CreateStep::Done => "done",
            CreateStep::Gc => "gc",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreateJournal {
    /// Last step begun.
    pub step: CreateStep,
    pub vmid: Option<u32>,
    /// ZFS dataset that may exist (copy/clone strategies).
    pub dataset: Option<String>,
    pub strategy: Option<RootfsStrategy>,
    /// Where the guest's rootfs is (dataset mountpoint or the bundle's rootfs).
    pub rootfs: Option<PathBuf>,
    /// The dataset's mount at `rootfs` as create found it: delete
    /// recognises that mount as the one create made, and unmounts it
    /// without waiting for the dataset's owner record (`delete.rs`). None:
    /// not a dataset, or the kernel gives no unique mount id (before Linux
    /// 6.8).
    #[serde(default)]
    pub rootfs_mount: Option<RootfsMount>,
    /// The guest may be registered with the control plane.
    pub guest: bool,
    /// `<lxc_path>`; the LXC dir is `<lxc_path>/<vmid>`.
    pub lxc_path: Option<PathBuf>,
    pub holder: Option<i32>,
    /// The holder's start time (to tell it from a reused pid).
    #[serde(default)]
    pub holder_start: Option<u64>,
    /// The guest's cgroup from the hierarchies' root (`linux.cgroupsPath`),
    /// recorded once LXC has made it (LXC fails when it exists): delete
    /// removes what LXC could not (a killed monitor leaves it).
    #[serde(default)]
    pub cgroup_dir: Option<PathBuf>,
    /// The guest's init (host pid, start time), once it waits for start.
    #[serde(default)]
    pub init: Option<(i32, Option<u64>)>,
    /// The init said it reports a failed exec through its `ready` FIFO
    /// (`guest_init::READY_WITH_EXEC_FAILURE`); an init of an older
    /// nexcage does not, and start then judges by `/proc` alone.
    #[serde(default)]
    pub init_reports_exec_failure: bool,
    /// process.env, handed to the init at start.
    #[serde(default)]
    pub env: Vec<String>,
    /// The container's process.args.
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
    /// The owner record stamped on the guest, dataset and LXC dir: undo
    /// touches only what carries it.
    #[serde(default)]
    pub owner: Option<super::owner::Owner>,
}

/// A mount as the kernel names it for good: its unique mount id
/// (`nexcage_zfs::mount_id`, `STATX_MNT_ID_UNIQUE`) and the boot it
/// belongs to (`/proc/sys/kernel/random/boot_id`), as unique mount ids
/// start again at every boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    pub boot: String,
    pub id: u64,
}

impl RootfsMount {
    /// The mount whose root is `path`, in this boot.
    pub fn of(path: &Path) -> Option<RootfsMount> {
        RootfsMount::in_this_boot(nexcage_zfs::mount_id(path)?)
    }

    /// Unique mount id `id` of this boot (None: the boot id is unreadable).
    pub fn in_this_boot(id: u64) -> Option<RootfsMount> {
        // One boot per process: read once.
        static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let boot = BOOT.get_or_init(|| std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|b| b.trim().to_string()));
        Some(RootfsMount { boot: boot.clone()?, id })
    }
}

impl CreateJournal {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Missing file = nothing done yet.
    pub fn load(dir: &Path) -> Result<CreateJournal> {
        match std::fs::read(Self::path(dir)) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parse {}", Self::path(dir).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CreateJournal::default()),
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
    pub fn begin(&mut self, dir: &Path, step: CreateStep) -> Result<()> {
        self.step = step;
        self.save(dir)?;
        crash_hook(step.name());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_words_of_today() {
        let j: CreateJournal = serde_json::from_str(r#"{"step":"lxcconf","vmid":100,"dataset":null,"strategy":"clone","rootfs":null,
            "guest":true,"lxc_path":"/var/lib/lxc","holder":null,"args":["sh"],"shares":[],"terminal":false}"#).unwrap();
        assert_eq!((j.step, j.strategy), (CreateStep::LxcConfig, Some(RootfsStrategy::Clone)));
        let v = serde_json::to_value(CreateJournal::default()).unwrap();
        assert_eq!((&v["step"], &v["strategy"]), (&serde_json::json!(""), &serde_json::Value::Null));
        for s in [CreateStep::Vmid, CreateStep::Dataset, CreateStep::Guest, CreateStep::LxcConfig, CreateStep::Holder, CreateStep::Init, CreateStep::Done, CreateStep::Gc] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.name()));
        }
    }
}
