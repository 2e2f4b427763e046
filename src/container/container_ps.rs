//! ps: the pids of the container's processes (host pid namespace).

use anyhow::Result;

use super::Container;
use crate::context::Ctx;

impl Container {
    /// Any status: a stopped container simply has none left (or the
    /// backend says why it cannot tell).
    pub fn pids(&self, ctx: &Ctx) -> Result<Vec<i32>> {
        self.backend(ctx)?.pids(&self.rec, self.dir())
    }
}
