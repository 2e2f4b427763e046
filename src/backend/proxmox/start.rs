//! start: release the holder (it runs `lxc-execute`), wait until the guest
//! runs, then the poststart hooks.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::journal::CreateJournal;
use super::{holder, hooks, lxc};
use crate::backend::oci::hooks::Phase;
use crate::state::Record;

pub fn start(rec: &Record, dir: &Path) -> Result<()> {
    holder::release(dir)?;
    // Return once the guest runs (or is already gone), so an exec or
    // kill right after start meets a set-up guest, as with runc.
    let j = CreateJournal::load(dir)?;
    let holder_alive = || rec.pid.is_some_and(|h| crate::proc::is_same_alive(h, rec.pid_start));
    if !lxc::wait_running(&j, &holder_alive, Duration::from_secs(10)) {
        tracing::warn!("the guest is not running 10 s after start");
    }
    hooks::run_recorded(rec, Phase::Poststart)
}
