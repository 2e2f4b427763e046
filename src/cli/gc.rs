//! `nexcage gc`: remove what crashed or abandoned Proxmox containers left
//! (state dirs whose holder is gone, in every root nexcage used here;
//! guests with nexcage's owner record whose state dir is gone).

use anyhow::Result;

use super::Ctx;
use crate::backend::GcCollected;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print what would be collected and why, without changing anything
    #[arg(long)]
    dry_run: bool,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let rep = crate::admin::gc::collect(ctx, a.dry_run)?;
    for c in &rep.collected {
        let line = match c {
            GcCollected::Container { root, id, .. } if *root == ctx.root => format!("container {id}"),
            GcCollected::Container { root, id, .. } => format!("container {id} (root {})", root.display()),
            GcCollected::Guest { vmid, .. } => format!("guest {vmid}"),
        };
        if a.dry_run {
            let why = match c {
                GcCollected::Container { why, .. } => why.clone(),
                GcCollected::Guest { owner, why, .. } => format!("container {:?} of root {}: {why}", owner.id, owner.root.display()),
            };
            println!("would collect {line}: {why}");
        } else {
            println!("{line}");
        }
    }
    Ok(0)
}
