//! `nexcage kill`: signal the container's init, or every process with --all.
//! runc's `kill [--all] ID [SIGNAL]`, or the user guide's
//! `kill --name NAME --signal SIGNAL`.

use anyhow::{anyhow, Result};

use super::target::Target;
use super::Ctx;
use crate::container::Container;
use crate::signal::Sig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to all processes of the container
    #[arg(short, long)]
    pub all: bool,
    #[command(flatten)]
    pub target: Target,
    /// Signal: a number, a name (TERM) or SIG-prefixed (SIGTERM); default SIGTERM; 0 only checks that the init exists, as in runc
    #[arg(value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// The user guide's form of SIGNAL
    #[arg(long = "signal", value_name = "SIGNAL", conflicts_with = "signal")]
    pub signal_flag: Option<String>,
}

/// Like runc, the container is looked up before the signal is parsed:
/// `kill NOSUCH BOGUS` says "does not exist" (exit 1), as runc does.
pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let mut c = Container::load(ctx, a.target.id())?;
    let sig = match a.signal.or(a.signal_flag) {
        Some(s) => s.parse::<Sig>().map_err(|e| anyhow!("kill: {e}"))?.0,
        None => libc::SIGTERM,
    };
    c.kill(ctx, sig, a.all)?;
    Ok(0)
}
