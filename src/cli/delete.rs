//! `nexcage delete`: remove a stopped (or, with --force, any) container.

use anyhow::Result;

use super::Ctx;
use crate::container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill the container if it is running, and succeed if it does not exist
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    match container::delete(ctx, &a.id, a.force) {
        Err(e) if a.force && e.to_string().contains("does not exist") => Ok(0),
        r => r.map(|_| 0),
    }
}
