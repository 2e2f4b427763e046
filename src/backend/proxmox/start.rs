//! start: hand the process to the guest's waiting init (nexcage-init),
//! wait until it has exec'd it, then the poststart hooks.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::hooks::GuestPhase;
use super::journal::CreateJournal;
use super::{guest_init, holder, hooks, lxc};
use crate::backend::oci::hooks::Phase;
use crate::state::Record;

/// How long start waits for the init to exec the process.
const EXEC_BOUND: Duration = Duration::from_secs(10);
/// How often start looks anyway while it waits for the init's signal.
const EXEC_SAFETY_STEP: Duration = Duration::from_millis(5);

pub fn start(rec: &Record, dir: &Path) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    let lxc_dir = j.lxc_dir().context("the container was not fully created")?;
    let init = lxc::from_holder(&j).context("the container's init is not running (the container has stopped)")?;
    let spec = crate::spec::load(&rec.bundle).context("cannot read the container's config.json")?.spec;
    if let Err(e) = hooks::run_in_guest(&spec, &rec.id, &rec.bundle, init, GuestPhase::StartContainer) {
        // As runc: the container does not stay behind a failed start.
        let _ = crate::proc::signal(init, libc::SIGKILL);
        return Err(e);
    }
    // Before the release: the init's signal needs a reader. An init of an
    // older nexcage sends none; short safety steps keep that cheap.
    let ready = guest_init::ready_signal(&lxc_dir).ok();
    let said = ready.as_ref().and_then(|r| r.try_clone().ok());
    let wake = match ready {
        Some(fd) => guest_init::Wake::default().on_readable(fd).safety_step(EXEC_SAFETY_STEP),
        None => guest_init::Wake::default(),
    };
    let init_start = crate::proc::start_time(init);
    guest_init::release(&lxc_dir, &j.args, &j.env)?;
    // Return once the process runs, so an exec or kill right after start
    // meets it, as with runc; fail when it did not start. The init says
    // so through `ready` when its exec fails (one that says nothing, of an
    // older nexcage, is judged by its status alone: 127/126).
    let exec_failed = std::cell::Cell::new(false);
    let failure_said = || {
        if j.init_reports_exec_failure && said.as_ref().and_then(guest_init::ready_byte) == Some(guest_init::EXEC_FAILED) {
            exec_failed.set(true);
        }
        exec_failed.get()
    };
    let gone = || failure_said() || lxc::from_holder(&j).is_none();
    let exec_d = || !failure_said() && crate::proc::is_same_alive(init, init_start) && guest_init::has_execd(&lxc_dir, init) && !guest_init::is_waiting(&lxc_dir, init);
    if !guest_init::wait_for("the container's init to start the process", EXEC_BOUND, &wake, &gone, &exec_d)? {
        // Ended already: an exec failure (127/126, said on the container's
        // stderr), or a process that ran and was quick.
        if let Some(h) = holder::alive(&j) {
            crate::proc::wait_for_exit(h, j.holder_start, Duration::from_secs(2));
        }
        let status = holder::status(dir);
        if failure_said() || (!j.init_reports_exec_failure && matches!(status, Some(126 | 127))) {
            let code = status.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
            bail!("the container's process did not start (status {code}: see the container's stderr)");
        }
    }
    // Hooks see the guest's PID 1 (the application), in the guest's namespaces.
    hooks::run_recorded(rec, Phase::Poststart)
}
