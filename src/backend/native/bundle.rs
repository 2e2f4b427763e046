//! The bundle libcontainer reads. libcontainer loads `config.json` itself
//! (at create, and again for each exec), so where nexcage's rules change
//! the spec (unknown capability names dropped, the seccomp profile moved to
//! the executor, create-time hooks relayed, a v1 cgroup mount given as
//! binds in a joined PID namespace: cgroupfs_binds) it gets a copy: `<state dir>/bundle/config.json`, with
//! `root.path` absolute, plus `seccomp.json` (the moved profile, for exec)
//! and `process.json` (the process before capabilities were lent, for exec).
//! Its hooks go through nexcage's relay (the state they get names the
//! bundle, and prestart/createRuntime say `created`); startContainer hooks
//! go to the executor. Otherwise libcontainer reads the bundle itself. Also here: what the executor needs
//! (`HOME`, the moved profile) and `process.cwd` made in the rootfs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::{Hook, Hooks, LinuxSeccomp};

use super::cgroupfs_binds;
use super::executor::{lend, movable_seccomp, Executor};
use crate::backend::oci;
use crate::spec::Bundle;

const SECCOMP_FILE: &str = "seccomp.json";
/// The container's process as the bundle gives it, when the copy's differs
/// (capabilities lent for loading the seccomp profile).
const PROCESS_FILE: &str = "process.json";

/// The bundle dir to give libcontainer and the executor for `bundle`'s init.
/// `state_dir`: the container's state dir.
pub fn prepare(bundle: &Bundle, id: &str, state_dir: &Path) -> Result<(PathBuf, Executor)> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().context("process is missing")?;
    for d in oci::cwd::ensure(&bundle.rootfs, process.cwd())? {
        tracing::debug!("created process.cwd component {}", d.display());
    }
    let env = process.env().clone().unwrap_or_default();
    let home = oci::home::missing_home(&env, &bundle.rootfs, process.user().uid());
    let seccomp = movable_seccomp(spec);
    let mut exec = Executor { seccomp: seccomp.clone(), home, ..Default::default() };
    let hooks = spec.hooks().as_ref().filter(|h| has_create_hooks(h));
    let mounts = cgroupfs_binds::replaced(spec, id)?;
    // "" names no profile (runc applies none); libcontainer would look for
    // AppArmor and fail on a host without it.
    let empty_apparmor = process.apparmor_profile().as_deref() == Some("");
    if seccomp.is_none() && bundle.dropped_caps.is_empty() && hooks.is_none() && mounts.is_none() && !empty_apparmor {
        return Ok((bundle.dir.clone(), exec));
    }
    let mut copy = spec.clone();
    if let (true, Some(p)) = (empty_apparmor, copy.process_mut().as_mut()) {
        p.set_apparmor_profile(None);
    }
    if let (Some(_), Some(p)) = (&seccomp, copy.process_mut().as_mut()) {
        exec.lent = lend(p);
    }
    if let Some(h) = hooks {
        let (relayed, start_container) = relay_hooks(h, &bundle.dir)?;
        copy.set_hooks(Some(relayed));
        exec.start_container = start_container;
        exec.state_id = id.to_string();
        exec.bundle = bundle.dir.clone();
        exec.annotations = spec.annotations().clone();
    }
    if mounts.is_some() {
        copy.set_mounts(mounts);
    }
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
    if !exec.lent.is_empty() {
        let f = dir.join(PROCESS_FILE);
        std::fs::write(&f, serde_json::to_vec(process)?).with_context(|| format!("failed to write {}", f.display()))?;
    }
    if let Some(s) = &seccomp {
        let f = dir.join(SECCOMP_FILE);
        std::fs::write(&f, serde_json::to_vec(s)?).with_context(|| format!("failed to write {}", f.display()))?;
    }
    Ok((dir, exec))
}

fn has_create_hooks(h: &Hooks) -> bool {
    let any = |v: &Option<Vec<Hook>>| v.as_ref().is_some_and(|v| !v.is_empty());
    any(h.prestart()) || any(h.create_runtime()) || any(h.create_container()) || any(h.start_container())
}

/// The hooks libcontainer runs, through nexcage's relay so that their state
/// names the bundle (not this copy) and says `created` with the pid for
/// prestart and createRuntime (as crun; libcontainer says `creating`);
/// createContainer keeps libcontainer's status (it has no pid to give).
/// startContainer hooks run inside the container, where the relay is not
/// reachable: they are returned for the executor to run.
fn relay_hooks(h: &Hooks, bundle: &Path) -> Result<(Hooks, Vec<Hook>)> {
    let exe = std::env::current_exe().context("cannot find nexcage's own binary to relay hooks")?;
    let relay = |v: &Option<Vec<Hook>>, status: Option<&str>| -> Option<Vec<Hook>> {
        v.as_ref().map(|v| v.iter().map(|k| oci::hooks::relayed(k, &exe, status, bundle)).collect())
    };
    let mut out = h.clone();
    out.set_prestart(relay(h.prestart(), Some("created")));
    out.set_create_runtime(relay(h.create_runtime(), Some("created")));
    out.set_create_container(relay(h.create_container(), None));
    out.set_start_container(None);
    Ok((out, h.start_container().clone().unwrap_or_default()))
}

/// The container's process (what `exec` inherits), from the bundle
/// libcontainer reads (`lc_bundle`, its config `cfg`): without capabilities
/// lent to the init.
pub fn process_of(lc_bundle: &Path, cfg: &serde_json::Value) -> Result<serde_json::Value> {
    let f = lc_bundle.join(PROCESS_FILE);
    if !f.exists() {
        return Ok(cfg["process"].clone());
    }
    let data = std::fs::read(&f).with_context(|| format!("failed to read {}", f.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("{}: malformed JSON", f.display()))
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
