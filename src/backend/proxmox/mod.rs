//! The Proxmox backend: each container is a Proxmox VE LXC guest (registered
//! through the configured control-plane driver) whose rootfs is a ZFS subvol,
//! run by `lxc-execute` under a holder process (see README.md here).
//!
//! The record's pid is the holder's: it exists from create on, becomes the
//! parent of `lxc-execute` at start and exits with the container's status.

mod cgroup;
mod create;
mod delete;
mod exec;
pub mod gc;
mod holder;
mod lxc;
mod lxcconf;
mod progress;
mod rootfs;
mod signal;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{Backend, CreateOpts, Created, ExecOpts};
use crate::state::Record;

pub struct Proxmox {
    cfg: nexcage_config::Config,
}

impl Proxmox {
    /// Reads nexcage's configuration (the backend needs storage, driver, lxc_path).
    pub fn load(config_path: Option<&Path>) -> Result<Self> {
        let loaded = nexcage_config::load(config_path).context("proxmox backend: cannot load nexcage's configuration")?;
        Ok(Proxmox { cfg: loaded.config })
    }

    pub fn config(&self) -> &nexcage_config::Config {
        &self.cfg
    }

    /// The configured control plane (pct or api driver).
    pub fn driver(&self) -> Result<Box<dyn nexcage_pve::driver::ControlPlane>> {
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

impl Backend for Proxmox {
    fn create(&self, opts: &CreateOpts) -> Result<Created> {
        create::create(self, opts)
    }

    fn start(&self, _rec: &Record, dir: &Path) -> Result<()> {
        holder::release(dir)
    }

    fn kill(&self, rec: &Record, dir: &Path, signal: i32, all: bool) -> Result<()> {
        signal::kill(rec, dir, signal, all)
    }

    fn delete(&self, rec: &Record, dir: &Path, force: bool) -> Result<()> {
        delete::delete(self, rec, dir, force)
    }

    fn exec(&self, rec: &Record, dir: &Path, opts: &ExecOpts) -> Result<i32> {
        exec::exec(rec, dir, opts)
    }

    fn pids(&self, _rec: &Record, dir: &Path) -> Result<Vec<i32>> {
        cgroup::pids(dir)
    }

    fn pause(&self, _rec: &Record, dir: &Path) -> Result<()> {
        signal::freeze(dir, true)
    }

    fn resume(&self, _rec: &Record, dir: &Path) -> Result<()> {
        signal::freeze(dir, false)
    }

    fn update(&self, _rec: &Record, dir: &Path, resources: &LinuxResources) -> Result<()> {
        cgroup::update(dir, resources)
    }

    fn stats(&self, _rec: &Record, dir: &Path) -> Result<serde_json::Value> {
        cgroup::stats(dir)
    }
}
