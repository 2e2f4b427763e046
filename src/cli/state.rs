//! `nexcage state`: the OCI state of a container as JSON.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let c = Container::load(ctx, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&c.state_json())?);
    Ok(0)
}
