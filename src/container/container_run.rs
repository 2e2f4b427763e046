//! run: start a just-created container; in the foreground, wait for its
//! init and delete the container afterwards (unless kept), as runc does.

use anyhow::Result;

use super::{wait_relayed, Container};
use crate::context::Ctx;

impl Container {
    /// Starts (a failed start removes the container again); with `detach`
    /// returns 0 at once, else releases the lock, waits for the init (our
    /// child: created with `foreground`) and returns its exit status,
    /// deleting the container unless `keep`.
    pub fn run(mut self, ctx: &Ctx, detach: bool, keep: bool) -> Result<i32> {
        if let Err(e) = self.start(ctx) {
            if let Ok(be) = self.backend(ctx) {
                let _ = self.teardown(&*be);
            }
            let _ = self.locked.remove();
            return Err(e);
        }
        if detach {
            return Ok(0);
        }
        let (id, pid) = (self.rec.id.clone(), self.rec.reaped_pid().unwrap_or(0));
        let relay = self.console.take().map(|s| s.relay_for(pid)).transpose()?;
        drop(self);
        let code = wait_relayed(pid, relay)?;
        if !keep {
            Container::delete(ctx, &id, true)?;
        }
        Ok(code)
    }
}
