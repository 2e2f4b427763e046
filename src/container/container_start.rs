//! start: run the user process of a created container.

use anyhow::Result;

use super::Container;
use crate::context::Ctx;

impl Container {
    /// Fails with a `TransitionError` unless the container is `created`.
    pub fn start(&mut self, ctx: &Ctx) -> Result<()> {
        self.status().can_start()?;
        self.backend(ctx)?.start(&self.rec, self.dir())?;
        self.rec.started = true;
        self.save()
    }
}
