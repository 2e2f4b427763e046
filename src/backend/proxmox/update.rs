//! update: memory and pids limits written into the guest's cgroup (v1
//! files here, v2 names on v2).

use std::path::Path;

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::guest_cgroup::guest_dir;
use super::journal::CreateJournal;
use super::lxc;
use crate::backend::BackendError;

pub fn update(dir: &Path, r: &LinuxResources) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&j) else { return Err(BackendError::NotRunning.into()) };
    let write = |ctrl: &str, v1: &str, v2: &str, val: String| -> Result<()> {
        let d = guest_dir(init, ctrl).with_context(|| format!("no {ctrl} cgroup for the guest"))?;
        let f = if d.join(v1).exists() { d.join(v1) } else { d.join(v2) };
        std::fs::write(&f, &val).with_context(|| format!("write {val} to {}", f.display()))
    };
    if let Some(m) = r.memory().as_ref().and_then(|m| m.limit()) {
        write("memory", "memory.limit_in_bytes", "memory.max", if m < 0 { "-1".into() } else { m.to_string() })?;
    }
    if let Some(pl) = r.pids().as_ref().map(|p| p.limit()) {
        write("pids", "pids.max", "pids.max", if pl <= 0 { "max".into() } else { pl.to_string() })?;
    }
    Ok(())
}
