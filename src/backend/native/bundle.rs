//! The bundle libcontainer reads. libcontainer loads `config.json` itself
//! (at create, and again for each exec), so where nexcage's rules change
//! the spec (unknown capability names dropped, the seccomp profile moved to
//! the executor) it gets a copy: `<state dir>/bundle/config.json`, with
//! `root.path` absolute, plus `seccomp.json` (the moved profile, for exec).
//! Otherwise it reads the bundle itself. Also here: what the executor needs
//! (`HOME`, the moved profile) and `process.cwd` made in the rootfs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::LinuxSeccomp;

use super::executor::{movable_seccomp, Executor};
use crate::backend::oci;
use crate::spec::Bundle;

const SECCOMP_FILE: &str = "seccomp.json";

/// The bundle dir to give libcontainer and the executor for `bundle`'s init.
/// `state_dir`: the container's state dir.
pub fn prepare(bundle: &Bundle, state_dir: &Path) -> Result<(PathBuf, Executor)> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().context("process is missing")?;
    for d in oci::cwd::ensure(&bundle.rootfs, process.cwd())? {
        tracing::debug!("created process.cwd component {}", d.display());
    }
    let env = process.env().clone().unwrap_or_default();
    let home = oci::home::missing_home(&env, &bundle.rootfs, process.user().uid());
    let seccomp = movable_seccomp(spec);
    let exec = Executor { seccomp: seccomp.clone(), home };
    if seccomp.is_none() && bundle.dropped_caps.is_empty() {
        return Ok((bundle.dir.clone(), exec));
    }
    let mut copy = spec.clone();
    if let (Some(_), Some(l)) = (&seccomp, copy.linux_mut().as_mut()) {
        l.set_seccomp(None);
    }
    if let Some(root) = copy.root_mut().as_mut() {
        root.set_path(bundle.rootfs.clone());
    }
    let dir = state_dir.join("bundle");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, serde_json::to_vec(&copy)?).with_context(|| format!("failed to write {}", cfg.display()))?;
    if let Some(s) = &seccomp {
        let f = dir.join(SECCOMP_FILE);
        std::fs::write(&f, serde_json::to_vec(s)?).with_context(|| format!("failed to write {}", f.display()))?;
    }
    Ok((dir, exec))
}

/// The container's seccomp profile, from the bundle libcontainer reads
/// (`lc_bundle`): the moved one, else the spec's.
pub fn seccomp_of(lc_bundle: &Path, spec: &serde_json::Value) -> Result<Option<LinuxSeccomp>> {
    let moved = lc_bundle.join(SECCOMP_FILE);
    if moved.exists() {
        let data = std::fs::read(&moved).with_context(|| format!("failed to read {}", moved.display()))?;
        return Ok(Some(serde_json::from_slice(&data).with_context(|| format!("{}: malformed JSON", moved.display()))?));
    }
    match spec.pointer("/linux/seccomp") {
        Some(v) if !v.is_null() => Ok(Some(serde_json::from_value(v.clone()).context("linux.seccomp: malformed")?)),
        _ => Ok(None),
    }
}
