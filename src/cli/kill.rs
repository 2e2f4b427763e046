//! `nexcage kill`: signal the container's init, or every process with --all.
//! runc's `kill [--all] ID [SIGNAL]`, or the user guide's
//! `kill --name NAME --signal SIGNAL`.

use anyhow::Result;

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
    /// Signal: a number, a name (TERM) or SIG-prefixed (SIGTERM); default SIGTERM
    #[arg(value_name = "SIGNAL")]
    pub signal: Option<Sig>,
    /// The user guide's form of SIGNAL
    #[arg(long = "signal", value_name = "SIGNAL", conflicts_with = "signal")]
    pub signal_flag: Option<Sig>,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let sig = a.signal.or(a.signal_flag).map_or(libc::SIGTERM, |s| s.0);
    Container::load(ctx, a.target.id())?.kill(ctx, sig, a.all)?;
    Ok(0)
}
