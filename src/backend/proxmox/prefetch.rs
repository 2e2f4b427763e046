//! The container's program read once through the guest's rootfs while LXC
//! starts the guest, so that start's `execve` and the program's first page
//! faults find it in the page cache.
//!
//! A rootfs dataset is a filesystem mounted by create (a clone or a copy);
//! on zfs-fuse every file of a new mount reaches the kernel through FUSE
//! requests to the daemon, cold. Measured on the benchmark's bundle
//! (busybox `sh -c 'echo ready; exec sleep 1000'`, a 1.9 MiB binary): from
//! `start` to the first output line 9.0 ms cold, 6.2 ms with the binary
//! read once after create; the read itself takes ~3 ms, which create hides
//! behind the guest's start (LXC's own work, ~7 ms), in a child process:
//! create forks the holder next and must have no other thread then.

use std::io::Read;
use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use super::lookup;

/// At most this much of the program is read (bytes): a large binary is
/// warmed from its start, where the ELF headers and the startup code are.
const MAX_BYTES: u64 = 32 << 20;

/// The reading child; dropping it ends it (SIGKILL: it only reads) and
/// reaps it, so create leaves no process behind.
#[derive(Debug)]
pub struct Prefetch(Option<Pid>);

/// Forks a child that resolves `args[0]` in `rootfs` as execve will in the
/// guest (the process's `PATH`, symlinks kept inside `rootfs`, relative
/// to `cwd`) and reads it. Nothing happens when it cannot fork or find the
/// program: start then reads the program itself.
pub fn start(rootfs: &Path, args: &[String], env: &[String], cwd: &Path) -> Prefetch {
    let Some(prog) = args.first() else { return Prefetch(None) };
    // SAFETY: create is single-threaded here (its early threads are joined
    // before the VMID is claimed; the holder's fork that follows relies on
    // the same), so the child may run Rust code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The child needs none of create's fds: the engine's stdio
            // pipes and create's locks are not held a moment longer by it
            // (should create die first, the child outlives it briefly).
            // SAFETY: close_range(2) on fds this process owns; none is used after.
            unsafe { libc::close_range(0, u32::MAX, 0) };
            if let Some(p) = lookup::find(rootfs, prog, env).ok().and_then(|p| lookup::resolve(rootfs, &cwd.join(p))) {
                read(&p);
            }
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing its copied stdio buffers.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => Prefetch(Some(child)),
        Err(e) => {
            tracing::debug!("prefetch of {prog} not started: {e}");
            Prefetch(None)
        }
    }
}

fn read(p: &Path) {
    let Ok(f) = std::fs::File::open(p) else { return };
    let mut buf = vec![0u8; 1 << 20];
    let mut f = f.take(MAX_BYTES);
    while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}
