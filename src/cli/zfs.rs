//! `nexcage zfs ...`: snapshots, rollbacks and clones of container rootfs
//! datasets (see admin::zfs).

use anyhow::Result;

use super::Ctx;
use crate::admin::zfs;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Create a dataset: POOL/DATASET
    Create { dataset: String },
    /// Snapshot a container's rootfs: NAME@SNAP (or a dataset: POOL/DATASET@SNAP)
    Snapshot { target: String },
    /// Roll a stopped container's rootfs back to NAME@SNAP
    Rollback {
        target: String,
        /// Also destroy snapshots newer than SNAP
        #[arg(short, long)]
        recursive: bool,
    },
    /// A new container NEWNAME whose rootfs is a clone of NAME@SNAP (or
    /// POOL/DATASET@SNAP cloned to the dataset NEWNAME)
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
    /// Properties of one container's rootfs dataset; without NAME the
    /// configured pool's health and usage
    Info { name: Option<String> },
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
                let s = |v: &serde_json::Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
                super::table::print(&["CONTAINER", "NAME", "TYPE", "USED", "REFQUOTA", "ORIGIN"], &["USED", "REFQUOTA"], rows.iter().map(|r| {
                    vec![s(&r["container"]), s(&r["name"]), s(&r["type"]), s(&r["used"]), s(&r["refquota"]), r["origin"].as_str().unwrap_or("-").to_string()]
                }));
            }
        }
        Cmd::Info { name: Some(name) } => println!("{}", serde_json::to_string_pretty(&zfs::info(ctx, &name)?)?),
        Cmd::Info { name: None } => println!("{}", serde_json::to_string_pretty(&zfs::pool_info(ctx)?)?),
        Cmd::Create { dataset } => {
            zfs::create(&dataset)?;
            println!("{dataset}");
        }
    }
    Ok(0)
}
