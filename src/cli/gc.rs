//! `nexcage gc`: remove what crashed or abandoned Proxmox containers left
//! (state dirs whose holder is gone, guests tagged `nexcage` without state).

use anyhow::Result;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, ctx: &Ctx) -> Result<i32> {
    let rep = crate::admin::gc::collect(ctx)?;
    for id in &rep.containers {
        println!("container {id}");
    }
    for v in &rep.guests {
        println!("guest {v}");
    }
    Ok(0)
}
