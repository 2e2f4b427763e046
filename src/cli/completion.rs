//! `nexcage completion SHELL`: completions generated from the clap definition.

use anyhow::Result;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shell to generate completions for
    pub shell: Shell,
}

pub fn run(a: Args) -> Result<i32> {
    let mut cmd = super::command();
    clap_complete::generate(a.shell, &mut cmd, "nexcage", &mut std::io::stdout());
    Ok(0)
}
