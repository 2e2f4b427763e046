//! The kernel's cgroup attach lock, taken early so that create waits less
//! for it.
//!
//! Every write of a pid to a `cgroup.procs` file takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing (kernel/cgroup/cgroup.c,
//! `cgroup_attach_lock`). A writer that finds the semaphore's rcu_sync idle
//! first waits for an RCU grace period (kernel/rcu/sync.c,
//! `rcu_sync_enter`): 5–16 ms on the 2-core test VM (HZ=250), the largest
//! single item of a create. A writer that comes while another one waits
//! shares that grace period, and one that comes within a grace period after
//! the last writer left does not wait at all. libcontainer's intermediate
//! process makes the first such write of a create (its own pid, to the
//! container's first cgroup), a few ms after nexcage started, and waits the
//! whole period with nothing else running (crun and runc wait it too).
//!
//! [`early`] starts that wait as the `create` (or `run`) command begins,
//! before its command line is even parsed (`cli::main`): a child process
//! writes `0` (itself) to the `cgroup.procs` file of the cgroup it shares
//! with nexcage, an attach to where it is, which moves nothing.
//! It writes only when that file lists its pid ([`lists_pid`]: in a
//! private cgroup namespace under the host's cgroup mount the path would
//! name another cgroup). Each write moves nothing but the child itself (a
//! supervisor that moved the child meanwhile would find it moved back).
//! Meanwhile nexcage goes on with argument parsing, the bundle, the state,
//! libcontainer's clone and its intermediate's mountinfo scans; the
//! intermediate's first cgroup write then waits only for the rest of that
//! grace period (BENCHMARKS.md, native create). The child then writes
//! again every [`KEEP_WARM`] (each such write is free, one grace period
//! not having passed since the last), so that the semaphore stays out of
//! its idle state until libcontainer's writes are done however late they
//! come (a loaded machine), until native create ends it ([`reap`]) or
//! [`WARM_FOR`] has passed. A create that the Proxmox backend serves, or
//! one refused before its build, has made writes that moved nothing. If the
//! file cannot be found or written (no cgroup fs, not root), only the head
//! start is lost.
//!
//! A process, not a thread: libcontainer clones its intermediate with a raw
//! `clone3`, without what `fork()` does about locks, so a lock that another
//! thread of nexcage holds at that moment (the allocator's, std's thread
//! bookkeeping as a thread starts or ends) stays locked in the
//! intermediate for good. With the write on a thread, one create of a
//! loaded benchmark run hung in the intermediate's exit, on such a lock.
//! The child is forked while nexcage has no other thread, so it may
//! allocate; it leaves through `_exit`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::unistd::{fork, ForkResult, Pid};

/// How often the child writes again after its first write: well within
/// the shortest grace period seen on the test VM (5 ms), after which the
/// kernel's rcu_sync would go idle again.
pub const KEEP_WARM: std::time::Duration = std::time::Duration::from_millis(2);

/// How long the child keeps writing at most (a native create ends it
/// earlier: the build's cgroup writes come 5–50 ms after start).
pub const WARM_FOR: std::time::Duration = std::time::Duration::from_millis(150);

/// The early writer's pid while it is not reaped (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// The early write under way; ends and reaps its process on drop (see
/// [`reap`]).
pub struct Early;

impl Drop for Early {
    fn drop(&mut self) {
        reap();
    }
}

/// Starts the early write (see the module doc) in a child process. Call it
/// while the process has a single thread.
pub fn early() -> Early {
    // SAFETY: the caller has no other thread (the start of `cli::main`), so
    // the child's copy of the allocator and of std is consistent; the
    // child leaves through `_exit`, running none of the parent's
    // destructors or atexit handlers.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // Nothing to say, and none of the caller's fds (stdio, pipes,
            // preserved fds) is held open by this child.
            // SAFETY: closes every fd of this child, which uses none of them.
            unsafe { libc::close_range(0, u32::MAX, 0) };
            // Gone with nexcage, should it die before reaping the child.
            // SAFETY: PR_SET_PDEATHSIG takes a signal number and changes
            // nothing but this process's parent-death signal.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            keep_own_cgroup_warm();
            // SAFETY: ends the child without running the parent's cleanup.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => CHILD.store(child.as_raw(), Ordering::Relaxed),
        Err(_) => {} // only the head start is lost
    }
    Early
}

/// Ends the early writer (SIGKILL: it only writes `0`, and a write under
/// way completes first) and reaps it. Native create calls this once
/// libcontainer's build returns (its cgroup writes are done), so that a
/// foreground `run` leaves no zombie; otherwise the drop of [`Early`].
pub fn reap() {
    let pid = CHILD.swap(0, Ordering::Relaxed);
    if pid > 0 {
        let pid = Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// The child's work: `0` to the `cgroup.procs` of its own cgroup, again
/// every [`KEEP_WARM`] for [`WARM_FOR`].
fn keep_own_cgroup_warm() {
    let Some(path) = own_procs_file() else { return };
    if !lists_pid(&path, std::process::id()) {
        return;
    }
    let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else { return };
    let until = std::time::Instant::now() + WARM_FOR;
    while f.write_all(b"0").is_ok() && std::time::Instant::now() < until {
        std::thread::sleep(KEEP_WARM);
    }
}

/// Whether the `cgroup.procs` file at `path` lists `pid`: the check that
/// `/proc/self/cgroup` and the mounted hierarchy agree. They do not in a
/// private cgroup namespace under the host's `/sys/fs/cgroup` (its paths
/// are relative to the namespace's root, so `/` there names the host's
/// root cgroup): writing `0` to that file would move nexcage. Read in
/// 4 KiB pieces, so a long list costs no large read.
fn lists_pid(path: &std::path::Path, pid: u32) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut buf = [0u8; 4096];
    let mut cur: Option<u64> = None;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return cur == Some(u64::from(pid)),
            Ok(n) => n,
            Err(_) => return false,
        };
        for &b in &buf[..n] {
            if b.is_ascii_digit() {
                cur = Some(cur.unwrap_or(0).saturating_mul(10).saturating_add(u64::from(b - b'0')));
            } else {
                if cur == Some(u64::from(pid)) {
                    return true;
                }
                cur = None;
            }
        }
    }
}

/// The first of [`candidates`] over `/proc/self/cgroup` that exists.
fn own_procs_file() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let access = |p: &PathBuf| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    text.lines().flat_map(candidates).find(access)
}

/// Where the `cgroup.procs` file of one `/proc/self/cgroup` line
/// (`ID:CONTROLLERS:PATH`) is when the hierarchies are mounted as systemd,
/// Docker and Proxmox mount them: `/sys/fs/cgroup/<controllers>` for v1
/// (`name=` dropped), `/sys/fs/cgroup/unified` (hybrid) or `/sys/fs/cgroup`
/// for v2.
fn candidates(line: &str) -> Vec<PathBuf> {
    let mut f = line.splitn(3, ':');
    let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else { return Vec::new() };
    let path = path.trim_end_matches('/');
    let dirs = match id {
        "0" => vec!["/sys/fs/cgroup/unified".to_string(), "/sys/fs/cgroup".to_string()],
        _ => vec![format!("/sys/fs/cgroup/{}", controllers.trim_start_matches("name="))],
    };
    dirs.into_iter().map(|d| PathBuf::from(format!("{d}{path}/cgroup.procs"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hierarchies_by_controller_names() {
        assert_eq!(candidates("9:name=systemd:/"), vec![PathBuf::from("/sys/fs/cgroup/systemd/cgroup.procs")]);
        assert_eq!(candidates("2:cpu,cpuacct:/a/b"), vec![PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b/cgroup.procs")]);
    }

    #[test]
    fn v2_hybrid_then_unified() {
        assert_eq!(
            candidates("0::/user.slice"),
            vec![PathBuf::from("/sys/fs/cgroup/unified/user.slice/cgroup.procs"), PathBuf::from("/sys/fs/cgroup/user.slice/cgroup.procs")]
        );
    }

    #[test]
    fn own_pid_found_in_a_procs_list() {
        let d = std::env::temp_dir().join(format!("nexcage-attach-lock-{}", std::process::id()));
        std::fs::write(&d, "1\n12\n123\n").unwrap();
        assert!(lists_pid(&d, 12) && lists_pid(&d, 123) && lists_pid(&d, 1));
        assert!(!lists_pid(&d, 2) && !lists_pid(&d, 1234));
        std::fs::remove_file(&d).unwrap();
        assert!(!lists_pid(&d, 12), "a missing file lists nothing");
    }

    #[test]
    fn malformed_lines_give_nothing() {
        assert!(candidates("").is_empty());
        assert!(candidates("garbage").is_empty());
    }
}
