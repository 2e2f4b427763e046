//! `nexcage system check` (alias `debug info`): what this node offers
//! nexcage, one line per component: ok, warn or fail, with a hint.
//! Exits 1 if anything fails.

use anyhow::Result;

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Check kernel, cgroups, LXC, ZFS, Proxmox, storage and registry access
    #[command(alias = "info")]
    Check,
}

pub fn run(_cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    Ok(if crate::admin::check::run(ctx) { 1 } else { 0 })
}
