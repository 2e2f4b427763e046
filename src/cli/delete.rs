//! `nexcage delete`: remove a stopped (or, with --force, any) container.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;
use crate::state::StateError;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill the container if it is running, and succeed if it does not exist
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    // An admin container's own bundle and log go with it.
    let deleted = match Container::delete_record(ctx, &a.id, a.force) {
        Err(e) if a.force && StateError::is_does_not_exist(&e) => None,
        r => r?,
    };
    if let Some(d) = deleted.filter(crate::admin::is_admin).map(|rec| rec.bundle) {
        crate::admin::forget(ctx, &d)?;
    }
    Ok(0)
}
