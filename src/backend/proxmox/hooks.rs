//! OCI hooks on the Proxmox path, run in the runtime's namespaces with the
//! container's state on stdin (failure rules: `backend::oci::hooks`):
//! `prestart` and `createRuntime` at the end of create, `poststart` after
//! start and `poststop` after delete. `createContainer` and
//! `startContainer` must run inside the container's namespaces, which only
//! exist once lxc-execute runs: such specs are refused at create.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use libcontainer::container::{ContainerStatus, State};
use libcontainer::oci_spec::runtime::{Hook, Spec};

use crate::backend::oci::hooks::{self, Phase};
use crate::backend::BackendError;

/// Refuses hooks this backend cannot run where the spec says.
pub fn check(spec: &Spec) -> Result<(), BackendError> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    for (name, hooks) in [("createContainer", h.create_container()), ("startContainer", h.start_container())] {
        if hooks.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(BackendError::Unsupported(format!("config.json: hooks.{name}: not supported by the Proxmox backend (they must run in the container's namespaces, which exist only once lxc-execute starts it)")));
        }
    }
    Ok(())
}

/// The hooks of a recorded container (poststart, poststop), from its
/// bundle's config.json; a config that cannot be read has none to run.
pub fn run_recorded(rec: &crate::state::Record, phase: Phase) -> Result<()> {
    match Spec::load(rec.bundle.join("config.json")) {
        Ok(spec) => run(&spec, &rec.id, &rec.bundle, rec.pid, phase),
        Err(_) => Ok(()),
    }
}

/// Runs the spec's hooks of `phase` with the state the spec gives them.
pub fn run(spec: &Spec, id: &str, bundle: &Path, pid: Option<i32>, phase: Phase) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let (list, status): (Vec<Hook>, ContainerStatus) = match phase {
        Phase::Create => {
            let mut v = h.prestart().clone().unwrap_or_default();
            v.extend(h.create_runtime().clone().unwrap_or_default());
            (v, ContainerStatus::Created)
        }
        Phase::Poststart => (h.poststart().clone().unwrap_or_default(), ContainerStatus::Running),
        Phase::Poststop => (h.poststop().clone().unwrap_or_default(), ContainerStatus::Stopped),
    };
    if list.is_empty() {
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
    hooks::run(list, &state, phase)
}
