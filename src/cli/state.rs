//! `nexcage state ID` (or `--name NAME`): the OCI state of a container as JSON.

use anyhow::Result;

use super::target::Target;
use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let c = Container::load(ctx, a.target.id())?;
    println!("{}", serde_json::to_string_pretty(&c.state_json())?);
    Ok(0)
}
