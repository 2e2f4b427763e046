//! Internal: `nexcage __hook`, the relay through which the native backend
//! runs OCI hooks whose state libcontainer would get wrong
//! (`backend::oci::hooks::relayed`).

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Status the hook's state must say ("" keeps it)
    #[arg(long, allow_hyphen_values = true)]
    pub status: String,
    /// Bundle the hook's state must say
    #[arg(long)]
    pub bundle: PathBuf,
    /// The hook: PATH ARG0 ARGS...
    #[arg(last = true, required = true)]
    pub hook: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let (path, argv) = a.hook.split_first().context("no hook to run")?;
    Err(crate::backend::oci::hooks::relay(&a.status, &a.bundle, std::path::Path::new(path), argv))
}
