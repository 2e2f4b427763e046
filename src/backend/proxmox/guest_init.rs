//! The host side of nexcage-init (`init/main.rs`), the guest's PID 1 from
//! create until start.
//!
//! `<lxc_dir>/init/` holds the init binary (embedded in nexcage at build
//! time), the FIFO `start` (start hands the process over through it) and
//! the FIFO `ready` (the init says through it that it waits on `start`;
//! create waits for that); LXC bind-mounts the dir read-only at
//! `/.nexcage` in the guest (an `lxc.mount.entry` in nexcage.conf). The
//! monitor starts the guest with `/.nexcage/nexcage-init wait`; a start by
//! Proxmox runs `lxc.init.cmd`, which is `nexcage-init pve` and refuses.
//! The dir lives as long as the LXC dir (delete removes both).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{Capability, Spec};
use std::collections::HashSet;

/// The static init, built by build.rs.
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nexcage-init"));

const DIR: &str = "init";
const NAME: &str = "nexcage-init";
const FIFO: &str = "start";
const READY: &str = "ready";
/// What the init writes to `ready` once it waits, when it also writes
/// [`EXEC_FAILED`] there after a failed exec (`init/main.rs`, the same
/// bytes; an older init wrote "1").
pub const READY_WITH_EXEC_FAILURE: u8 = b'2';
/// What the init writes to `ready` when the exec of the process failed,
/// before it exits 127/126 (`init/main.rs`).
pub const EXEC_FAILED: u8 = b'x';
/// The process settings the init applies (`write_settings`).
const SETTINGS: &str = "process";
/// Where the dir is in the guest (relative to its root, for LXC).
pub const GUEST_DIR: &str = ".nexcage";

/// argv of the guest's init when nexcage's monitor starts it.
pub const WAIT_ARGV: [&str; 2] = ["/.nexcage/nexcage-init", "wait"];
/// `lxc.init.cmd` for a start by anyone else (Proxmox): refuses.
pub const PVE_CMD: &str = "/.nexcage/nexcage-init pve";

pub fn dir(lxc_dir: &Path) -> PathBuf {
    lxc_dir.join(DIR)
}

fn fifo(lxc_dir: &Path) -> PathBuf {
    dir(lxc_dir).join(FIFO)
}

/// FNV-1a of [`BINARY`] (build.rs): names the host's shared copy.
const DIGEST: &str = env!("NEXCAGE_INIT_DIGEST");

/// Puts the init binary (0755), the FIFO `start` (0644: the init may run
/// as the process's uid, and only reads it) and the FIFO `ready` (0622:
/// the init, whatever its uid, only writes it; a FIFO on the read-only
/// bind mount can still be opened for writing) into `<lxc_dir>/init`. With `shared_dir` (an
/// unprivileged guest, whose root cannot write a file of the host's root)
/// the binary is a hard link to the host's copy of this build's init there
/// (`<data_dir>/init/nexcage-init-<digest>`, made by the first such create
/// of a build); else (a privileged guest, whose root could write through a
/// remount of `/.nexcage` what every later guest runs; another filesystem;
/// a data dir that cannot be written) a copy of its own: 1.2 MB written
/// per guest, 2-3 ms of create.
pub fn install(lxc_dir: &Path, shared_dir: Option<&Path>) -> Result<()> {
    let d = dir(lxc_dir);
    std::fs::create_dir(&d).with_context(|| format!("create {}", d.display()))?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    let bin = d.join(NAME);
    if !shared_dir.is_some_and(|s| link_shared(s, &bin)) {
        write_binary(&bin).with_context(|| format!("write {}", bin.display()))?;
    }
    for (f, mode) in [(fifo(lxc_dir), 0o644), (d.join(READY), 0o622)] {
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(mode)).with_context(|| format!("mkfifo {}", f.display()))?;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Hard-links `bin` to `<shared_dir>/nexcage-init-<digest>`, making that
/// file first when this build has none (or one of another size, e.g. cut
/// short by a crash) yet: written under a name of its own, synced, then
/// renamed, so it is whole or absent; the copies of other builds are
/// removed then (a guest keeps its own link). False when no link could be
/// made.
fn link_shared(shared_dir: &Path, bin: &Path) -> bool {
    let shared = shared_dir.join(format!("{NAME}-{DIGEST}"));
    let whole = || std::fs::symlink_metadata(&shared).is_ok_and(|m| m.is_file() && m.len() == BINARY.len() as u64);
    if whole() && std::fs::hard_link(&shared, bin).is_ok() {
        return true;
    }
    let tmp = shared_dir.join(format!(".{NAME}-{DIGEST}.{}", std::process::id()));
    let made = std::fs::create_dir_all(shared_dir)
        .and_then(|()| write_binary(&tmp))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &shared));
    if let Err(e) = made {
        tracing::debug!("no shared copy of nexcage-init in {}: {e}", shared_dir.display());
        let _ = std::fs::remove_file(&tmp);
        return false;
    }
    let old = |n: &str| n.starts_with(&format!("{NAME}-")) && n != format!("{NAME}-{DIGEST}");
    for e in std::fs::read_dir(shared_dir).into_iter().flatten().flatten() {
        if e.file_name().to_str().is_some_and(old) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::fs::hard_link(&shared, bin).is_ok()
}

/// Writes [`BINARY`] to a new file `path` (0755).
fn write_binary(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(path)?;
    f.write_all(BINARY)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o755))
}

/// Writes `<lxc_dir>/init/process`, the settings nexcage-init applies in
/// runc's order before it waits for start (`init/main.rs`, `Settings`):
/// `domainname`, `process.user` (uid, gid, additionalGids, umask), the
/// five capability sets, `noNewPrivileges`, and `linux.seccomp` compiled to
/// BPF here (`backend::oci::seccomp_bpf`). Records are
/// `<tag> <length>\n<bytes>`. Nothing secret: the env goes through the FIFO.
///
/// Errors: a seccomp profile that cannot be compiled, the file not written.
pub fn write_settings(lxc_dir: &Path, spec: &Spec) -> Result<()> {
    let f = dir(lxc_dir).join(SETTINGS);
    std::fs::write(&f, settings(spec)?).with_context(|| format!("write {}", f.display()))
}

fn settings(spec: &Spec) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    let mut put = |tag: &str, v: &[u8]| {
        b.extend_from_slice(format!("{tag} {}\n", v.len()).as_bytes());
        b.extend_from_slice(v);
    };
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        put("domainname", d.as_bytes());
    }
    let p = spec.process().clone().unwrap_or_default();
    let u = p.user();
    let groups: Vec<String> = u.additional_gids().iter().flatten().map(u32::to_string).collect();
    put("groups", groups.join(" ").as_bytes());
    put("gid", u.gid().to_string().as_bytes());
    put("uid", u.uid().to_string().as_bytes());
    if let Some(m) = u.umask() {
        put("umask", m.to_string().as_bytes());
    }
    if p.no_new_privileges() == Some(true) {
        put("nnp", b"1");
    }
    if p.terminal() == Some(true) {
        put("terminal", b"1");
    }
    if let Some(c) = p.capabilities() {
        let masks = [c.bounding(), c.effective(), c.permitted(), c.inheritable(), c.ambient()].map(|s| format!("{:x}", cap_mask(s)));
        put("caps", masks.join(" ").as_bytes());
    }
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        put("seccomp", &crate::backend::oci::seccomp_bpf::compile(s).context("linux.seccomp")?);
        let flags = crate::backend::oci::seccomp_bpf::filter_flags(s);
        if flags != 0 {
            put("seccomp_flags", flags.to_string().as_bytes());
        }
    }
    Ok(b)
}

/// A capability set as the kernel's bit mask (unknown names were dropped
/// with a warning when the spec was loaded).
fn cap_mask(set: &Option<HashSet<Capability>>) -> u64 {
    let bit = |c: &Capability| -> u64 {
        let name = serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        name.parse::<caps::Capability>().map_or(0, |c| c.bitmask())
    };
    set.iter().flatten().map(bit).fold(0, |a, b| a | b)
}

/// The `lxc.mount.entry` value that puts the dir at `/.nexcage`.
pub fn mount_entry(lxc_dir: &Path) -> String {
    format!("{} {GUEST_DIR} none bind,ro,create=dir 0 0", dir(lxc_dir).display())
}

/// (dev, ino) of a path.
fn id(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// The read end of the FIFO `ready`, opened without blocking. The init
/// signals through it twice (`init/main.rs`): create's reader becomes
/// readable once the init holds `start` open and writes a byte
/// ([`READY_WITH_EXEC_FAILURE`]); start's reader hangs up once the init's
/// exec is over (its close-on-exec write end closes), after reading
/// [`EXEC_FAILED`] when the exec failed. Open it before the guest starts (before the release), or
/// the init, finding no reader, says nothing (ENXIO) and the wait falls
/// back to [`Wake`]'s safety step.
///
/// Why not inotify (as until session 10): closing an inotify fd waits for
/// an SRCU grace period of the kernel's fsnotify (`fsnotify_destroy_group`),
/// 12-16 ms of every create on the test VM's 6.18 kernel.
pub fn ready_signal(lxc_dir: &Path) -> Result<std::os::fd::OwnedFd> {
    let f = dir(lxc_dir).join(READY);
    let r = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&f).with_context(|| format!("open {}", f.display()))?;
    Ok(r.into())
}

/// One byte waiting in the read end of `ready` (opened non-blocking by
/// [`ready_signal`]), if any.
pub fn ready_byte(fd: &std::os::fd::OwnedFd) -> Option<u8> {
    let mut b = [0u8; 1];
    matches!(nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd), &mut b), Ok(1)).then_some(b[0])
}

/// Whether `pid` holds the start FIFO open (the init waits on it).
pub fn is_waiting(lxc_dir: &Path, pid: i32) -> bool {
    let Some(want) = id(&fifo(lxc_dir)) else { return false };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|e| id(&e.path()) == Some(want))
}

/// Whether `pid` has exec'd the process: its `/proc/<pid>/exe` is readable
/// and is not the init binary. A process on its way out has no `exe` any
/// more (its memory is gone before it becomes a zombie): an init whose
/// exec failed (127/126) and that is exiting has not exec'd anything.
pub fn has_execd(lxc_dir: &Path, pid: i32) -> bool {
    let init = id(&dir(lxc_dir).join(NAME));
    let exe = id(Path::new(&format!("/proc/{pid}/exe")));
    init.is_some() && exe.is_some() && exe != init
}

/// start: hands `args` and `env` to the waiting init, which execs them.
/// Fails at once when no init waits on the FIFO.
pub fn release(lxc_dir: &Path, args: &[String], env: &[String]) -> Result<()> {
    let f = fifo(lxc_dir);
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&f)
        .with_context(|| format!("the container's init is not waiting on {} (the container has stopped)", f.display()))?;
    // A reader exists: blocking writes from here on (the payload may exceed the pipe).
    let fd = std::os::fd::AsRawFd::as_raw_fd(&w);
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).context("fcntl on the start FIFO")?;
    w.write_all(&payload(args, env)?).context("cannot hand the process to the container's init")?;
    Ok(())
}

/// `<nargs> <nenv>\n` then each string NUL-terminated (init/main.rs).
fn payload(args: &[String], env: &[String]) -> Result<Vec<u8>> {
    let mut b = format!("{} {}\n", args.len(), env.len()).into_bytes();
    for s in args.iter().chain(env) {
        if s.contains('\0') {
            bail!("process.args and process.env must not contain NUL bytes");
        }
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }
    Ok(b)
}

/// Waits until `cond` holds, or `gone()` says there is nothing to wait
/// for, for at most `bound`; `what` names it in the error. Between checks
/// it sleeps in [`Wake::wait`]: until one of the wake's events, else a
/// short poll step.
pub fn wait_for(what: &str, bound: Duration, wake: &Wake, gone: &dyn Fn() -> bool, cond: &dyn Fn() -> bool) -> Result<bool> {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return Ok(true);
        }
        if gone() {
            return Ok(false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out after {} s waiting for {what}", bound.as_secs());
        }
        wake.wait(left);
    }
}

/// The events a [`wait_for`] sleeps on: fds that become readable when
/// the awaited thing may have happened (the `ready` FIFO, a process's
/// pidfd). Without any, a wait polls every [`Wake::POLL_STEP`]; with
/// some, it sleeps until one fires (re-checking every [`Wake::SAFETY_STEP`]
/// in case an event was missed). An fd that fired stays readable (a FIFO
/// whose writer closed, an exited process's pidfd), so after the first
/// event the wait polls every [`Wake::POLL_STEP`] rather than spin.
#[derive(Default)]
pub struct Wake {
    fds: Vec<std::os::fd::OwnedFd>,
    fired: std::cell::Cell<bool>,
    safety_step: Option<Duration>,
}

impl Wake {
    /// The step of a wait without events (or past its first event): 1 ms
    /// keeps what it adds to a command below a millisecond.
    const POLL_STEP: Duration = Duration::from_millis(1);
    const SAFETY_STEP: Duration = Duration::from_millis(100);

    /// Wakes when `fd` becomes readable.
    pub fn on_readable(mut self, fd: std::os::fd::OwnedFd) -> Wake {
        self.fds.push(fd);
        self
    }

    /// Re-checks every `step` while no event came (default [`Wake::SAFETY_STEP`]).
    pub fn safety_step(mut self, step: Duration) -> Wake {
        self.safety_step = Some(step);
        self
    }

    /// Wakes when process `pid` exits (best effort: without a pidfd, polls).
    pub fn on_exit(mut self, pid: i32) -> Wake {
        if let Ok(fd) = crate::proc::pidfd_open(pid) {
            self.fds.push(fd);
        }
        self
    }

    /// Sleeps at most `max`: until an event, else one step.
    fn wait(&self, max: Duration) {
        use std::os::fd::AsRawFd;
        if self.fds.is_empty() || self.fired.get() {
            std::thread::sleep(max.min(Self::POLL_STEP));
            return;
        }
        let mut pfds: Vec<libc::pollfd> = self.fds.iter().map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        let ms = i32::try_from(max.min(self.safety_step.unwrap_or(Self::SAFETY_STEP)).as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds whose fds `self` owns.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n > 0 {
            self.fired.set(true);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_counts_then_strings() {
        let p = super::payload(&["sh".into(), "".into()], &["A=1".into()]).unwrap();
        assert_eq!(p, b"2 1\nsh\0\0A=1\0");
        assert!(super::payload(&["a\0b".into()], &[]).is_err());
    }

    #[test]
    fn settings_records() {
        let spec: libcontainer::oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","domainname":"d.example","process":{"cwd":"/","args":["sh"],"noNewPrivileges":true,
            "user":{"uid":1000,"gid":100,"additionalGids":[5,6],"umask":18},
            "capabilities":{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"],"inheritable":[],"ambient":[]}}}"#,
        )
        .unwrap();
        let s = String::from_utf8(super::settings(&spec).unwrap()).unwrap();
        assert_eq!(s, "domainname 9\nd.examplegroups 3\n5 6gid 3\n100uid 4\n1000umask 2\n18nnp 1\n1caps 12\n21 20 20 0 0");
    }
}
