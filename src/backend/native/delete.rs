//! delete: everything libcontainer made (process, cgroup, its state dir),
//! then the poststop hooks.

use std::path::Path;

use anyhow::Result;
use libcontainer::container::{Container, ContainerStatus};

use super::hooks::take_hooks;
use super::{describe, lc_root};
use crate::backend::oci::hooks::{self, Phase};
use crate::state::Record;

pub fn delete(rec: &Record, dir: &Path) -> Result<()> {
    let lc_dir = lc_root(dir).join(&rec.id);
    if !lc_dir.exists() {
        return Ok(());
    }
    let mut c = match Container::load(lc_dir.clone()) {
        Ok(c) => c,
        Err(_) => return Ok(std::fs::remove_dir_all(&lc_dir)?),
    };
    // libcontainer stops at the first failing poststop hook and fails the
    // delete; the spec says each failure is a warning and the rest still
    // run. So nexcage takes the poststop hooks out and runs them itself.
    let poststop = take_hooks(&lc_dir, Phase::Poststop);
    // The front end has already checked status; here everything must go.
    c.delete(true).map_err(describe)?;
    c.state.status = ContainerStatus::Stopped;
    c.state.bundle = rec.bundle.clone(); // libcontainer's may be nexcage's copy (bundle.rs)
    hooks::run(poststop, &c.state, Phase::Poststop)
}
