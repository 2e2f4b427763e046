//! runc's terminal rule (utils_linux.go `runner.checkTerminal`), for
//! create, run and exec alike, checked before anything is made.

use anyhow::{bail, Result};

/// A process that nexcage will not wait for (`create`, `run -d`,
/// `exec -d`) and that has a terminal needs `--console-socket`, where its
/// pty master is sent; a console socket needs such a process. `detach`:
/// nexcage returns before the process ends; `terminal`: `process.terminal`
/// (exec: `-t`, or the `--process` file's `terminal`). Errors in runc's
/// words, with nexcage's name.
pub(super) fn check(detach: bool, terminal: bool, console_socket: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        bail!("cannot allocate tty if nexcage will detach without setting console socket");
    }
    if console_socket && (!detach || !terminal) {
        bail!("cannot use console socket if nexcage will not detach or allocate tty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn runc_check_terminal_table() {
        // (detach, terminal, console socket) -> allowed
        for (d, t, s, ok) in [
            (true, true, true, true),
            (true, true, false, false),
            (true, false, false, true),
            (true, false, true, false),
            (false, true, false, true),
            (false, true, true, false),
            (false, false, false, true),
            (false, false, true, false),
        ] {
            assert_eq!(check(d, t, s).is_ok(), ok, "detach {d} terminal {t} socket {s}");
        }
    }
}
