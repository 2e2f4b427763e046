//! update: change the resource limits of a container that has a process.

use anyhow::Result;
use libcontainer::oci_spec::runtime::LinuxResources;

use super::Container;
use crate::context::Ctx;

impl Container {
    pub fn update(&self, ctx: &Ctx, resources: &LinuxResources) -> Result<()> {
        self.status().can_update()?;
        self.backend(ctx)?.update(&self.rec, self.dir(), resources)
    }
}
