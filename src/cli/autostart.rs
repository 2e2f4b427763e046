//! `nexcage autostart`: at boot, start every admin container created with
//! `--auto-start` that is not running (its state under --root is gone
//! after a reboot; its bundle in the data dir is not).

use anyhow::Result;

use super::Ctx;
use crate::admin;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, ctx: &Ctx) -> Result<i32> {
    let mut failed = 0;
    admin::lifecycle::autostart(ctx, |name, r| match r {
        Ok(()) => println!("started {name}"),
        Err(e) => {
            eprintln!("nexcage: autostart {name}: {e:#}");
            failed += 1;
        }
    })?;
    Ok(if failed > 0 { 1 } else { 0 })
}
