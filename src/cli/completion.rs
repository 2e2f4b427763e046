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
    // Generated into memory, then printed: a closed stdout then takes the
    // one quiet path (cli::epipe), not clap_complete's panic.
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "nexcage", &mut out);
    print!("{}", String::from_utf8_lossy(&out));
    Ok(0)
}
