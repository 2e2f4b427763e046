//! The native backend: namespaces, cgroups, capabilities, seccomp and
//! pivot_root through youki's libcontainer. libcontainer keeps its own state
//! in `<state dir>/native/<id>/`; nexcage's record stays authoritative for
//! status (pid + start time). One file per operation; this file holds the
//! backend and what the operations share.

pub mod attach_lock;
mod bundle;
mod cgroup_manager;
mod cgroup_mount;
mod cgroupfs_binds;
mod cgroupfs_ro;
mod create;
mod delete;
mod exec;
mod executor;
mod hooks;
mod init_errors;
mod kill;
mod loopback;
mod pause;
mod start;
mod stats;
pub(crate) mod update;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{Backend, CreateOpts, Created, ExecOpts, Stats};
use crate::state::Record;

pub struct Native;

/// libcontainer's root: `<state dir>/native`.
fn lc_root(dir: &Path) -> PathBuf {
    dir.join("native")
}

/// The container as libcontainer saved it.
fn load(rec: &Record, dir: &Path) -> Result<Container> {
    Container::load(lc_root(dir).join(&rec.id))
        .with_context(|| format!("cannot load native state of {}", rec.id))
}

/// libcontainer's errors are terse at the top and detailed in the chain.
pub fn describe(e: libcontainer::error::LibcontainerError) -> anyhow::Error {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    // The init's failure comes through a channel as one string; say it as runc does.
    anyhow!(msg.replace("exec process failed with error error in executing process : ", "unable to start container process: "))
}

/// An OS error in the kernel's words ("Permission denied"), without Rust's
/// "(os error 13)".
pub fn os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

impl Backend for Native {
    fn create(&self, opts: &CreateOpts) -> super::Result<Created> {
        Ok(create::create(opts)?)
    }

    fn start(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(start::start(rec, dir)?)
    }

    fn kill(&self, rec: &Record, dir: &Path, signal: i32, all: bool) -> super::Result<()> {
        Ok(kill::kill(rec, dir, signal, all)?)
    }

    fn delete(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(delete::delete(rec, dir)?)
    }

    fn exec(&self, rec: &Record, dir: &Path, opts: &ExecOpts) -> super::Result<i32> {
        Ok(exec::exec(rec, dir, opts)?)
    }

    fn pids(&self, rec: &Record, dir: &Path) -> super::Result<Vec<i32>> {
        Ok(stats::pids(rec, dir)?)
    }

    fn pause(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(pause::pause(rec, dir)?)
    }

    fn resume(&self, rec: &Record, dir: &Path) -> super::Result<()> {
        Ok(pause::resume(rec, dir)?)
    }

    fn update(&self, rec: &Record, dir: &Path, resources: &LinuxResources) -> super::Result<()> {
        Ok(update::update(rec, dir, resources)?)
    }

    fn stats(&self, rec: &Record, dir: &Path) -> super::Result<Stats> {
        Ok(stats::stats(rec, dir)?)
    }
}
