//! `nexcage autostart`: at boot, start every admin container created with
//! `--auto-start` that is not running (its state under --root is gone
//! after a reboot; its bundle in the data dir is not).

use anyhow::Result;

use super::Ctx;
use crate::admin::{self, AUTOSTART_ANNOTATION};
use crate::container::Container;
use crate::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, ctx: &Ctx) -> Result<i32> {
    let dir = admin::bundles_dir(ctx)?;
    let mut failed = 0;
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for d in names {
        let Some(name) = d.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        let Ok(data) = std::fs::read(d.join("config.json")) else { continue };
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&data) else { continue };
        if spec["annotations"][AUTOSTART_ANNOTATION] != "true" {
            continue;
        }
        let running = Container::load(ctx, &name).is_ok_and(|c| c.status() == Status::Running);
        if running {
            continue;
        }
        match admin::lifecycle::launch(ctx, &name, &d) {
            Ok(()) => println!("started {name}"),
            Err(e) => {
                eprintln!("nexcage: autostart {name}: {e:#}");
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
