//! The signal state a container's process starts with, as under runc: every
//! disposition the default and no signal blocked. Without this the process
//! would inherit what the runtime had: Rust's runtime ignores SIGPIPE, a
//! shell that started the engine in the background ignores SIGINT/SIGQUIT
//! (`SigIgn: 0x1006` in `/proc/<pid>/status`).

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

/// Resets every signal (but SIGKILL, SIGSTOP) to SIG_DFL and unblocks all.
/// For the process about to execve; failures leave that signal as it was.
pub fn reset() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installs the default disposition; no handler code runs.
        let _ = unsafe { sigaction(s, &dfl) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}
