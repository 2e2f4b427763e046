//! The Proxmox backend: each container is a Proxmox VE LXC guest (registered
//! through the configured control-plane driver) whose rootfs is a ZFS subvol,
//! run by liblxc in a holder process, the guest's LXC monitor, with
//! nexcage-init as its PID 1 until start (see README.md here).
//!
//! The record's pid is the holder's: it exists from create on, is what the
//! engine reaps, and ends as the container's process ended.
//!
//! One file per operation (`create`, `start`, `kill`, `delete`, `exec`,
//! `pause`, `update`, `stats`), as in the native backend; the rest are the
//! pieces they share (the create journal, the guest's cgroups, LXC, the
//! holder, the rootfs).

mod attach;
mod create;
mod delete;
mod devices;
mod exec;
pub mod gc;
mod guest_cgroup;
mod holder;
mod hooks;
mod include;
mod journal;
mod kill;
mod lookup;
mod guest_init;
mod guest_mounts;
mod in_guest;
mod liblxc;
mod lxc;
mod lxcconf;
pub mod net;
pub mod owner;
mod nspath;
mod paths;
mod pause;
mod prefetch;
mod rootfs;
mod roots;
mod stage;
mod start;
mod stats;
mod sysctl;
pub mod subids;
mod template;
mod update;
mod vmid;

pub use rootfs::{CLONE_ANNOTATION, DISK_ANNOTATION, STRATEGY_ANNOTATION};
pub use template::setup as privilege_setup;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{Backend, CreateOpts, Created, ExecOpts, Stats};
use crate::state::Record;
use journal::CreateJournal;

/// Whether a guest with these namespaces (type, joined by path) can run in
/// Proxmox's id map. Not with a `bind` rootfs (its owners cannot be
/// shifted). Not when it joins namespaces by path (an engine's or a pod's,
/// owned by the host's user namespace), nor when it keeps the host's pid
/// namespace: in a user namespace LXC can mount proc only for a pid
/// namespace that user namespace owns. Keeping the host's network, ipc or
/// uts namespace works: LXC then binds the host's /sys, create binds the
/// host's mqueue (`stage::host_mqueue`), and no hostname is set.
pub fn unprivileged_possible(ns: impl IntoIterator<Item = (libcontainer::oci_spec::runtime::LinuxNamespaceType, bool)>, bind_rootfs: bool) -> bool {
    use libcontainer::oci_spec::runtime::LinuxNamespaceType as T;
    let ns: Vec<_> = ns.into_iter().collect();
    let own = |t: T| ns.iter().any(|(x, joined)| *x == t && !joined);
    !bind_rootfs && ns.iter().all(|(_, joined)| !joined) && own(T::Pid)
}

#[derive(Clone)]
pub struct Proxmox {
    cfg: nexcage_config::Config,
    /// The configuration file read, recorded at create so later commands
    /// (which engines may run with another environment) use the same one.
    cfg_path: Option<PathBuf>,
    /// `pct`/`pvesh` as resolved at create (engines run delete without PATH).
    tools: Option<(PathBuf, PathBuf)>,
}

/// Engines run the runtime with a bare environment (podman: no PATH), so
/// tools are looked up on PATH plus the standard system directories.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Absolute path of `bin` on PATH (or the system dirs), else `bin` itself.
pub fn resolve(bin: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(SYSTEM_PATH.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(bin))
}

impl Proxmox {
    /// Reads nexcage's configuration (the backend needs storage, driver, lxc_path).
    pub fn load(config_path: Option<&Path>) -> Result<Self> {
        ensure_path();
        let loaded = nexcage_config::load(config_path).context("proxmox backend: cannot load nexcage's configuration")?;
        Ok(Proxmox { cfg: loaded.config, cfg_path: loaded.path, tools: None })
    }

    /// The backend as create configured it (its config file and tools, from
    /// the create journal), falling back to this one's.
    fn for_journal(&self, p: &CreateJournal) -> Result<Proxmox> {
        let mut px = match &p.config_path {
            Some(c) if Some(c) != self.cfg_path.as_ref() && c.exists() => Proxmox::load(Some(c))?,
            _ => Proxmox { cfg: self.cfg.clone(), cfg_path: self.cfg_path.clone(), tools: None },
        };
        px.tools = p.pct_tools.clone();
        Ok(px)
    }

    pub fn config(&self) -> &nexcage_config::Config {
        &self.cfg
    }

    pub fn config_path(&self) -> Option<&Path> {
        self.cfg_path.as_deref()
    }

    /// The configured control plane (pct or api driver).
    pub fn driver(&self) -> Result<Box<dyn nexcage_pve::driver::ControlPlane>> {
        use nexcage_pve::driver::pct::{PctDriver, PctOptions};
        if self.cfg.driver() == nexcage_config::Driver::Pct {
            let mut o = PctOptions::new(&nexcage_pve::driver::node_name(&self.cfg)?);
            let (pct, pvesh) = self.tools.clone().unwrap_or_else(|| (resolve("pct"), resolve("pvesh")));
            o.pct = pct;
            o.pvesh = pvesh;
            o.pveversion = resolve("pveversion");
            o.pvesm = resolve("pvesm");
            return Ok(Box::new(PctDriver::new(o)));
        }
        let (d, warnings) = nexcage_pve::driver::from_config(&self.cfg)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(d)
    }

    pub fn lxc_path(&self) -> PathBuf {
        self.cfg.lxc_path()
    }
}

/// Gives a PATH-less process (podman runs the runtime like that) the
/// system directories, so zfs, lxc-* and cp are found.
fn ensure_path() {
    if std::env::var_os("PATH").is_none_or(|p| p.is_empty()) {
        // SAFETY: called at command start, before nexcage spawns threads.
        std::env::set_var("PATH", SYSTEM_PATH);
    }
}

impl Backend for Proxmox {
    fn create(&self, opts: &CreateOpts) -> super::Result<Created> {
        Ok(create::create(self, opts)?)
    }

    fn start(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(start::start(rec, dir)?)
    }

    fn kill(&self, _rec: &Record, dir: &Path, signal: i32, all: bool) -> super::Result<()> {
        Ok(kill::kill(dir, signal, all)?)
    }

    fn delete(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(delete::delete(self, rec, dir)?)
    }

    fn exec(&self, rec: &Record, dir: &Path, opts: &ExecOpts) -> super::Result<i32> {
        Ok(exec::exec(rec, dir, opts)?)
    }

    fn pids(&self, _rec: &Record, dir: &Path) -> super::Result<Vec<i32>> {
        Ok(stats::pids(dir)?)
    }

    fn pause(&self, _rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(pause::pause(dir)?)
    }

    fn resume(&self, _rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(pause::resume(dir)?)
    }

    fn update(&self, _rec: &Record, dir: &Path, resources: &LinuxResources) -> super::Result<()> {
        Ok(update::update(self, dir, resources)?)
    }

    fn stats(&self, _rec: &Record, dir: &Path) -> super::Result<Stats> {
        Ok(stats::stats(dir)?)
    }
}
