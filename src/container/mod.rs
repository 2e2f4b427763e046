//! The `Container` handle: one container's locked state directory and its
//! record. Every OCI operation is a method in its own file (the shape of
//! youki's libcontainer/src/container/): refresh the status, check the
//! transition (`Status::can_*`), call the backend, record the new state,
//! save. The lock is held for as long as the handle lives.

pub mod console_relay;
mod container_create;
mod container_delete;
mod container_events;
mod container_exec;
mod container_kill;
mod container_pause;
mod container_ps;
mod container_run;
mod container_start;
mod container_update;
mod terminal;

use std::path::Path;

use anyhow::Result;

use crate::backend::{self, Backend};
use crate::context::Ctx;
use crate::proc;
use crate::state::{Locked, Record, Status, Store};

pub use container_create::CreateArgs;

/// A container under its lock (see `state::Locked`), with its record.
pub struct Container {
    locked: Locked,
    rec: Record,
    /// Where the backend sends the pty of a foreground `run` with
    /// `process.terminal` and no `--console-socket` (`console_relay.rs`).
    console: Option<console_relay::ConsoleSocket>,
}

impl Container {
    /// Locks container `id` and reads its record; fails with
    /// `StateError::DoesNotExist` when there is none.
    pub fn load(ctx: &Ctx, id: &str) -> Result<Container> {
        Self::load_from(&ctx.store()?, id)
    }

    /// As `load`, in an already opened store (for loops over `Store::ids`).
    pub fn load_from(store: &Store, id: &str) -> Result<Container> {
        let locked = store.lock(id)?;
        let rec = locked.load()?;
        Ok(Container { locked, rec, console: None })
    }

    pub fn record(&self) -> &Record {
        &self.rec
    }

    /// The container's state directory (backends keep their files inside it).
    pub fn dir(&self) -> &Path {
        &self.locked.dir
    }

    /// The status now, derived from the process (see `status`).
    pub fn status(&self) -> Status {
        status(&self.rec)
    }

    /// The state document (`nexcage state`).
    pub fn state_json(&self) -> serde_json::Value {
        state_json(&self.rec)
    }

    fn save(&self) -> Result<()> {
        self.locked.save(&self.rec)
    }

    /// The backend that owns this container (chosen at create, recorded).
    fn backend(&self, ctx: &Ctx) -> Result<Box<dyn Backend>> {
        backend::for_kind(self.rec.backend, ctx.config_path.as_deref())
    }
}

/// Status from what is observable, never from what was last written:
/// the recorded pid must still be the same live process.
pub fn status(rec: &Record) -> Status {
    match rec.pid {
        None => Status::Creating,
        Some(pid) if !proc::is_same_alive(pid, rec.pid_start) => Status::Stopped,
        Some(_) if rec.paused => Status::Paused,
        Some(_) if rec.started => Status::Running,
        Some(_) => Status::Created,
    }
}

/// The state document, with the fields runc prints.
pub fn state_json(rec: &Record) -> serde_json::Value {
    let st = status(rec);
    let pid = match st {
        Status::Stopped | Status::Creating => 0,
        _ => rec.pid.unwrap_or(0),
    };
    let mut v = serde_json::json!({
        "ociVersion": rec.oci_version,
        "id": rec.id,
        "pid": pid,
        "status": st.to_string(),
        "bundle": rec.bundle,
        "rootfs": rec.rootfs,
        "created": rec.created,
        "owner": rec.owner,
        "backend": rec.backend.to_string(),
    });
    if !rec.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&rec.annotations).unwrap_or_default();
    }
    v
}

/// [`wait_forwarding`], then the end of `relay` (the pty's last output, the
/// terminal restored), if the process has one.
pub fn wait_relayed(pid: i32, relay: Option<console_relay::Relay>) -> Result<i32> {
    let code = wait_forwarding(pid);
    if let Some(r) = relay {
        r.finish();
    }
    code
}

/// Waits for our child `pid`, forwarding the usual terminating signals to it.
/// Returns its exit status the way a shell reports it (128+N for signal N).
pub fn wait_forwarding(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use signal_hook::consts::*;
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])?;
    let handle = signals.handle();
    let fwd = std::thread::spawn(move || {
        for s in signals.forever() {
            let _ = proc::signal(pid, s);
        }
    });
    let code = loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => anyhow::bail!("waiting for process {pid}: {e}"),
        }
    };
    handle.close();
    let _ = fwd.join();
    Ok(code)
}
