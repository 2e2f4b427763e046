//! nexcage: an OCI runtime with runc's command line.
//! Parse, set up logging, dispatch; nothing else lives here.

mod admin;
mod backend;
mod cli;
mod container;
mod context;
mod logging;
mod network;
mod proc;
mod signal;
mod spec;
mod state;

fn main() {
    std::process::exit(cli::main());
}
