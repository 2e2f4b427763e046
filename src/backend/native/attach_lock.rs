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
//! before its command line is even parsed (`cli::main`): a thread writes `0`
//! (its own process) to the `cgroup.procs` file of the cgroup nexcage is
//! already in, an attach to where it is, which moves nothing.
//! It writes only when that file lists nexcage's pid ([`lists_pid`]: in a
//! private cgroup namespace under the host's cgroup mount the path would
//! name another cgroup). A supervisor that moves nexcage in the
//! microseconds between that read and the write would see it moved back;
//! nothing else can be moved by the write.
//! Meanwhile the main thread goes on with argument parsing, the bundle,
//! the state, libcontainer's clone and its intermediate's mountinfo scans;
//! the intermediate's first cgroup write then waits only for the rest of
//! that grace period (BENCHMARKS.md, native create). A create that the
//! Proxmox backend serves, or one refused before its build, has made one
//! write that moved nothing. If the file cannot be found or written (no
//! cgroup fs, not root), only the head start is lost.

use std::io::Write;
use std::path::PathBuf;
use std::thread::JoinHandle;

/// The thread making the early write; joined on drop (a create's build
/// takes longer than the grace period, and a process does not end before
/// its threads anyway).
pub struct Early(Option<JoinHandle<()>>);

impl Drop for Early {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}

/// Starts the early write (see the module doc) on a thread, which also
/// finds nexcage's own `cgroup.procs` (nothing when there is none), so that
/// the caller goes on at once.
pub fn early() -> Early {
    let t = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
        let Some(path) = own_procs_file() else { return };
        if lists_pid(&path, std::process::id()) {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                let _ = f.write_all(b"0");
            }
        }
    });
    Early(t.ok())
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
