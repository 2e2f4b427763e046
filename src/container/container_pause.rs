//! pause / resume: freeze and thaw the container's processes.

use anyhow::Result;

use super::Container;
use crate::context::Ctx;

impl Container {
    /// A running or created container pauses (runc).
    pub fn pause(&mut self, ctx: &Ctx) -> Result<()> {
        self.status().can_pause()?;
        self.backend(ctx)?.pause(&self.rec, self.dir())?;
        self.rec.paused = true;
        self.save()
    }

    /// Only a paused container resumes.
    pub fn resume(&mut self, ctx: &Ctx) -> Result<()> {
        self.status().can_resume()?;
        self.backend(ctx)?.resume(&self.rec, self.dir())?;
        self.rec.paused = false;
        self.save()
    }
}
