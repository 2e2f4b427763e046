//! Running a step of create in some of the guest's namespaces, from the
//! host (as host root, which owns every namespace the guest has), for what
//! LXC cannot set itself: a thread of its own enters them (`setns`; the
//! mount namespace after `unshare(CLONE_FS)`, which setns requires of a
//! threaded process) and ends with the step, so nexcage's other threads
//! keep the host's namespaces.

use anyhow::{anyhow, Context, Result};
use nix::sched::{setns, unshare, CloneFlags};

/// Runs `f` in a thread that has joined the namespaces `kinds` (`mnt`,
/// `net`, `ipc`, `uts`, ...) of `init`, the guest's PID 1.
pub fn run<T: Send>(init: i32, kinds: &[&str], f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            for kind in kinds {
                let path = format!("/proc/{init}/ns/{kind}");
                let ns = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
                if *kind == "mnt" {
                    unshare(CloneFlags::CLONE_FS).context("unshare(CLONE_FS)")?;
                }
                setns(&ns, CloneFlags::empty()).with_context(|| format!("enter the guest's {kind} namespace ({path})"))?;
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("the thread in the guest's namespaces panicked"))?
    })
}
