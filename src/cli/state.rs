//! `nexcage state`: the OCI state of a container as JSON.

use anyhow::Result;

use super::Ctx;
use crate::container::state_json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let locked = ctx.store()?.lock(&a.id)?;
    let rec = locked.load()?;
    println!("{}", serde_json::to_string_pretty(&state_json(&rec))?);
    Ok(0)
}
