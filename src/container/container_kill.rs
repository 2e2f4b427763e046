//! kill: signal the container's init, or with `all` every process in its
//! cgroup; and the admin's stop step built on it.

use anyhow::Result;

use super::Container;
use crate::context::Ctx;

impl Container {
    /// Fails with "container not running" unless there is a process (or `all`).
    ///
    /// A paused container is thawed after the signal, as runc does, when
    /// the signal is SIGKILL (libcontainer `Container.Signal`: frozen tasks
    /// die only once thawed) or goes to every process (`--all`:
    /// `signalAllProcesses` freezes, signals, thaws); it is then running
    /// again and its state says so. Any other signal to the init waits
    /// for resume.
    pub fn kill(&mut self, ctx: &Ctx, signal: i32, all: bool) -> Result<()> {
        self.status().can_kill(all)?;
        let backend = self.backend(ctx)?;
        backend.kill(&self.rec, self.dir(), signal, all)?;
        if self.rec.paused && (all || signal == libc::SIGKILL) && !self.status().is_stopped() {
            // As runc, a failed thaw is a warning: the signal was sent. A
            // container that ended meanwhile (its cgroup gone with it) is
            // not one.
            match backend.resume(&self.rec, self.dir()) {
                Ok(()) => {
                    self.rec.paused = false;
                    self.save()?;
                }
                Err(_) if self.status().is_stopped() => {}
                Err(e) => tracing::warn!("thaw after kill: {e:#}"),
            }
        }
        Ok(())
    }

    /// The admin `stop` step: sends `signal` unless the container has
    /// stopped (a paused one is thawed first for SIGTERM, which a frozen
    /// process cannot act on). Returns false when there was nothing to signal.
    pub fn signal_to_stop(&mut self, ctx: &Ctx, signal: i32, all: bool) -> Result<bool> {
        if self.status().is_stopped() {
            return Ok(false);
        }
        if signal == libc::SIGTERM && self.status().can_resume().is_ok() {
            self.resume(ctx)?;
        }
        match self.kill(ctx, signal, all) {
            Ok(()) => Ok(true),
            Err(_) if self.status().is_stopped() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
