//! OCI hooks on the Proxmox path, run in the runtime's namespaces with the
//! container's state on stdin: `prestart` and `createRuntime` at the end of
//! create (a failure fails create, which then undoes everything),
//! `poststart` after start and `poststop` after delete (failures are
//! warnings; the next hook still runs). `createContainer` and
//! `startContainer` must run inside the container's namespaces, which only
//! exist once lxc-execute runs: such specs are refused at create.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use libcontainer::container::{ContainerStatus, State};
use libcontainer::oci_spec::runtime::{Hook, Spec};

pub enum Stage {
    Created,
    Started,
    Deleted,
}

/// Refuses hooks this backend cannot run where the spec says.
pub fn check(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    for (name, hooks) in [("createContainer", h.create_container()), ("startContainer", h.start_container())] {
        if hooks.as_ref().is_some_and(|v| !v.is_empty()) {
            bail!("config.json: hooks.{name}: not supported by the Proxmox backend (they must run in the container's namespaces, which exist only once lxc-execute starts it)");
        }
    }
    Ok(())
}

/// The hooks of a recorded container (poststart, poststop), from its
/// bundle's config.json; a config that cannot be read has none to run.
pub fn run_recorded(rec: &crate::state::Record, stage: Stage) -> Result<()> {
    match Spec::load(rec.bundle.join("config.json")) {
        Ok(spec) => run(&spec, &rec.id, &rec.bundle, rec.pid, stage),
        Err(_) => Ok(()),
    }
}

/// Runs the hooks of `stage`. Errors only for the create stage.
pub fn run(spec: &Spec, id: &str, bundle: &Path, pid: Option<i32>, stage: Stage) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let (hooks, status): (Vec<Hook>, ContainerStatus) = match stage {
        Stage::Created => {
            let mut v = h.prestart().clone().unwrap_or_default();
            v.extend(h.create_runtime().clone().unwrap_or_default());
            (v, ContainerStatus::Created)
        }
        Stage::Started => (h.poststart().clone().unwrap_or_default(), ContainerStatus::Running),
        Stage::Deleted => (h.poststop().clone().unwrap_or_default(), ContainerStatus::Stopped),
    };
    if hooks.is_empty() {
        return Ok(());
    }
    let state = State {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        status,
        pid,
        bundle: bundle.to_path_buf(),
        annotations: spec.annotations().clone().map(|a| a.into_iter().collect::<HashMap<_, _>>()),
        ..Default::default()
    };
    for hook in hooks {
        let name = hook.path().display().to_string();
        let res = libcontainer::hooks::run_hooks(Some(&vec![hook]), Some(&state), None, None, None);
        match (res, &stage) {
            (Ok(()), _) => {}
            (Err(e), Stage::Created) => bail!("hook {name} failed: {e}"),
            (Err(e), _) => tracing::warn!("hook {name} failed: {e}"),
        }
    }
    Ok(())
}
