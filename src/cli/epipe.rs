//! A closed stdout ends the command quietly, as with runc: `nexcage ps ID |
//! head -1` exits 141 (128 + SIGPIPE) with nothing on stderr. Go's runtime
//! dies by SIGPIPE when a write to fd 1 fails with EPIPE; Rust ignores
//! SIGPIPE, so `print!`/`println!` panic instead ("failed printing to
//! stdout: Broken pipe"). Every stdout write path of the command line goes
//! through `print!`/`println!` (tables, JSON, man, completion), so this one
//! hook covers them all; writes to other fds (a container's pipes, sockets)
//! still get EPIPE as an error, as in Go.

/// Status of a command whose stdout reader went away (128 + SIGPIPE).
pub const STATUS: i32 = 128 + libc::SIGPIPE;

/// Installs the panic hook; any other panic is reported as before.
pub fn install() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_stdout_epipe(&info.to_string()) {
            std::process::exit(STATUS);
        }
        report(info)
    }));
}

/// Whether a panic's text is std's "failed printing to stdout" for EPIPE.
fn is_stdout_epipe(text: &str) -> bool {
    text.contains("failed printing to stdout") && text.contains(&std::io::Error::from_raw_os_error(libc::EPIPE).to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_stdout_epipe_is_quiet() {
        let epipe = std::io::Error::from_raw_os_error(libc::EPIPE);
        assert!(super::is_stdout_epipe(&format!("panicked at x.rs:1:1:\nfailed printing to stdout: {epipe}")));
        assert!(!super::is_stdout_epipe(&format!("panicked at x.rs:1:1:\nfailed printing to stderr: {epipe}")));
        assert!(!super::is_stdout_epipe("panicked at x.rs:1:1:\nfailed printing to stdout: No space left on device (os error 28)"));
    }
}
