//! The flags that say where a new process is handed over: its pid (a
//! file), its pty master and a pidfd (Unix sockets). `create`, `run` and
//! `exec` share them; exec words their help for "the process" (see exec.rs).

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Handoff {
    /// File to write the container process's pid to
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set (required then, unless run in the foreground)
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container process
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,
}

impl Handoff {
    /// exec's wording of the help: the new process is not the container's.
    /// (`Command::mut_args` keeps the flags' order; `mut_arg` would move them.)
    pub fn for_exec(a: clap::Arg) -> clap::Arg {
        match a.get_id().as_str() {
            "pid_file" => a.help("File to write the process's pid to"),
            "console_socket" => a.help("Unix socket that receives the pty master (with -d and a terminal, required)"),
            "pidfd_socket" => a.help("Unix socket that receives a pidfd of the process"),
            _ => a,
        }
    }

    /// Sends a pidfd of `pid` to `--pidfd-socket`, when given.
    pub fn send_pidfd(&self, pid: Option<i32>) -> Result<()> {
        match (&self.pidfd_socket, pid) {
            (Some(sock), Some(pid)) => crate::proc::send_pidfd(sock, pid),
            _ => Ok(()),
        }
    }
}
