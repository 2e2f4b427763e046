//! `nexcage zfs ...`: snapshots, rollbacks and clones of container rootfs
//! datasets (see admin::zfs).

use anyhow::Result;

use super::Ctx;
use crate::admin::zfs;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Snapshot a container's rootfs: NAME@SNAP
    Snapshot { target: String },
    /// Roll a stopped container's rootfs back to NAME@SNAP
    Rollback {
        target: String,
        /// Also destroy snapshots newer than SNAP
        #[arg(short, long)]
        recursive: bool,
    },
    /// A new container NEWNAME whose rootfs is a clone of NAME@SNAP
    Clone {
        target: String,
        new_name: String,
        /// Start it once created
        #[arg(long)]
        start: bool,
    },
    /// Rootfs datasets and snapshots of all containers
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Properties of one container's rootfs dataset
    Info { name: String },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    match cmd {
        Cmd::Snapshot { target } => println!("{}", zfs::snapshot(ctx, &target)?),
        Cmd::Rollback { target, recursive } => zfs::rollback(ctx, &target, recursive)?,
        Cmd::Clone { target, new_name, start } => {
            zfs::clone(ctx, &target, &new_name, start)?;
            println!("{new_name}");
        }
        Cmd::List { format } => {
            let rows = zfs::list(ctx)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{:<20} {:<48} {:<10} {:>12} {:>12} ORIGIN", "CONTAINER", "NAME", "TYPE", "USED", "REFQUOTA");
                for r in &rows {
                    println!("{:<20} {:<48} {:<10} {:>12} {:>12} {}", r["container"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""),
                        r["type"].as_str().unwrap_or(""), r["used"], r["refquota"], r["origin"].as_str().unwrap_or("-"));
                }
            }
        }
        Cmd::Info { name } => println!("{}", serde_json::to_string_pretty(&zfs::info(ctx, &name)?)?),
    }
    Ok(0)
}
