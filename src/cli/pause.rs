//! `nexcage pause` / `nexcage resume`: freeze and thaw a container's cgroup.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn pause(a: Args, ctx: &Ctx) -> Result<i32> {
    Container::load(ctx, &a.id)?.pause(ctx)?;
    Ok(0)
}

pub fn resume(a: Args, ctx: &Ctx) -> Result<i32> {
    Container::load(ctx, &a.id)?.resume(ctx)?;
    Ok(0)
}
