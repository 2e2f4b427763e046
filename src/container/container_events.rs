//! events --stats / stats: the container's cgroup statistics in runc's shape.

use anyhow::Result;

use super::Container;
use crate::context::Ctx;

impl Container {
    /// runc's `events --stats` data object; "container not running" once stopped.
    pub fn stats(&self, ctx: &Ctx) -> Result<serde_json::Value> {
        self.status().can_report()?;
        self.backend(ctx)?.stats(&self.rec, self.dir())
    }
}
