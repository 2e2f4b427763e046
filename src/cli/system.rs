//! `nexcage system check` (alias `debug info`): what this node offers
//! nexcage, one line per component: ok, warn or fail, with a hint.
//! Exits 1 if anything fails. `nexcage system resources`: what it has.

use anyhow::Result;

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Check kernel, cgroups, LXC, ZFS, Proxmox, storage and registry access
    #[command(alias = "info")]
    Check,
    /// CPUs, memory, free storage per pool, Proxmox node status
    Resources {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    match cmd {
        Cmd::Check => Ok(if crate::admin::check::run(ctx) { 1 } else { 0 }),
        Cmd::Resources { format } => {
            let v = crate::admin::resources::collect(ctx);
            if format == "json" {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                crate::admin::resources::print(&v);
            }
            Ok(0)
        }
    }
}
