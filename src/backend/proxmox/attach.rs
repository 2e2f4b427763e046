//! The exec'd process's side of `exec`: everything between fork (already in
//! the guest's pid namespace) and execve. What it needs from the host (the
//! guest's namespaces and cgroups, its init's capability bounding set, the
//! console socket) is opened before fork, in `Target::open`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp, Process};
use libcontainer::syscall::syscall::create_syscall;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::{guest_cgroup, holder};

/// The guest as the exec'd process joins it.
pub struct Target {
    /// The guest's pid namespace, unless it is ours.
    pub pid_ns: Option<File>,
    /// Other namespaces to join, in order (user first), unless ours.
    ns: Vec<(File, CloneFlags, &'static str)>,
    cgroup_procs: Vec<PathBuf>,
    process: Process,
    seccomp: Option<LinuxSeccomp>,
    console: Option<UnixStream>,
    preserve_fds: i32,
}

impl Target {
    pub fn open(init: i32, process: &Process, seccomp: Option<LinuxSeccomp>, console: Option<UnixStream>, preserve_fds: i32) -> Result<Target> {
        let open = |name: &str| -> Result<Option<File>> {
            let theirs = format!("/proc/{init}/ns/{name}");
            let (a, b) = (std::fs::metadata(&theirs), std::fs::metadata(format!("/proc/self/ns/{name}")));
            let a = a.with_context(|| format!("cannot read {theirs}"))?;
            if b.is_ok_and(|b| b.ino() == a.ino() && b.dev() == a.dev()) {
                return Ok(None);
            }
            Ok(Some(File::open(&theirs).with_context(|| format!("cannot open {theirs}"))?))
        };
        let mut ns = Vec::new();
        for (name, flag) in [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            if let Some(f) = open(name)? {
                ns.push((f, flag, name));
            }
        }
        let mut process = process.clone();
        process.set_capabilities(Some(clamp(process.capabilities().as_ref(), &bounding_of(init)?)));
        Ok(Target { pid_ns: open("pid")?, ns, cgroup_procs: guest_cgroup::procs_files(init), process, seccomp, console, preserve_fds })
    }
}

/// The guest init's capability bounding set (what `lxc.cap.keep` left it).
fn bounding_of(init: i32) -> Result<HashSet<Capability>> {
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).context("cannot read the guest init's status")?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).context("no CapBnd in the guest init's status")?;
    let mask = u64::from_str_radix(hex.trim(), 16).context("malformed CapBnd")?;
    Ok(caps::all().into_iter().filter(|c| mask & c.bitmask() != 0).filter_map(|c| serde_json::from_value(c.to_string().into()).ok()).collect())
}

/// The process's capabilities, never more than the guest's bounding set; a
/// process without any gets the guest's set (what its root has).
fn clamp(caps: Option<&LinuxCapabilities>, guest: &HashSet<Capability>) -> LinuxCapabilities {
    let cut = |s: &Option<HashSet<Capability>>| Some(s.iter().flatten().filter(|c| guest.contains(c)).copied().collect());
    let (b, e, p, i, a) = match caps {
        Some(c) => (cut(c.bounding()), cut(c.effective()), cut(c.permitted()), cut(c.inheritable()), cut(c.ambient())),
        None => (Some(guest.clone()), Some(guest.clone()), Some(guest.clone()), Some(HashSet::new()), Some(HashSet::new())),
    };
    let mut out = LinuxCapabilities::default();
    out.set_bounding(b);
    out.set_effective(e);
    out.set_permitted(p);
    out.set_inheritable(i);
    out.set_ambient(a);
    out
}

/// The forked child: sets itself up and execs, or reports why not on
/// `err` and exits. Never returns (no destructor of the parent's state,
/// such as the container lock, runs here).
pub fn child(t: &Target, err: OwnedFd) -> ! {
    let e = match setup(t) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = nix::unistd::write(&err, format!("{e:#}").as_bytes());
    // SAFETY: _exit ends this forked child without running the parent's
    // atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn setup(t: &Target) -> Result<Infallible> {
    crate::backend::oci::signals::reset();
    let sys = create_syscall();
    for f in &t.cgroup_procs {
        std::fs::write(f, "0").with_context(|| format!("cannot join the guest's cgroup {}", f.display()))?;
    }
    for (f, flag, name) in &t.ns {
        sys.set_ns(f.as_raw_fd(), *flag).with_context(|| format!("cannot join the guest's {name} namespace"))?;
    }
    // Nothing of nexcage's but stdio and the preserved fds survives exec.
    sys.close_range(t.preserve_fds).context("cannot mark fds close-on-exec")?;
    if let Some(sock) = &t.console {
        terminal(sock)?;
    }
    let p = &t.process;
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).context("cannot set oom_score_adj")?;
    }
    for r in p.rlimits().iter().flatten() {
        sys.set_rlimit(r).with_context(|| format!("cannot set {:?}", r.typ()))?;
    }
    let user = p.user();
    if let Some(m) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m as libc::mode_t));
    }
    let groups: Vec<Gid> = user.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect();
    sys.set_groups(&groups).context("cannot set additional groups")?;
    sys.set_id(Uid::from_raw(user.uid()), Gid::from_raw(user.gid())).with_context(|| format!("cannot become {}:{}", user.uid(), user.gid()))?;
    let nnp = p.no_new_privileges() == Some(true);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the drop.
    if !nnp {
        seccomp(t)?;
    }
    // The process's AppArmor profile (exec inherits the container's), as
    // runc's exec applies it; LXC applied the init's at its start.
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        crate::backend::oci::lsm::apply_apparmor(profile)?;
    }
    libcontainer::capabilities::reset_effective(sys.as_ref()).context("cannot reset capabilities")?;
    if let Some(c) = p.capabilities() {
        libcontainer::capabilities::drop_privileges(c, sys.as_ref()).context("cannot drop capabilities")?;
    }
    let cwd = p.cwd();
    if !cwd.as_os_str().is_empty() {
        nix::unistd::chdir(cwd).with_context(|| format!("cannot change to the working directory {}", cwd.display()))?;
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("cannot set no_new_privs")?;
        seccomp(t)?;
    }
    execute(p)
}

fn seccomp(t: &Target) -> Result<()> {
    if let Some(s) = &t.seccomp {
        libcontainer::seccomp::initialize_seccomp(s).context("cannot load the seccomp profile")?;
    }
    Ok(())
}

/// A pty from the guest's devpts: the master goes to the console socket,
/// the slave becomes stdio and the controlling terminal.
fn terminal(sock: &UnixStream) -> Result<()> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).context("cannot open the guest's /dev/ptmx")?;
    nix::pty::grantpt(&master).context("grantpt")?;
    nix::pty::unlockpt(&master).context("unlockpt")?;
    let name = nix::pty::ptsname_r(&master).context("ptsname")?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY, nix::sys::stat::Mode::empty()).with_context(|| format!("open {name}"))?;
    holder::send_master(sock, &master)?;
    nix::unistd::setsid().context("setsid")?;
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).context("dup2 the pty")?;
    }
    // SAFETY: TIOCSCTTY on our own pty slave (fd 0), no pointers involved.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        bail!("cannot make the pty the controlling terminal: {}", std::io::Error::last_os_error());
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    Ok(())
}

/// execve with the process's own environment; the command is looked up in
/// its PATH, as runc does.
fn execute(p: &Process) -> Result<Infallible> {
    let args = p.args().clone().unwrap_or_default();
    let Some(prog) = args.first() else { bail!("no command given") };
    let env = p.env().clone().unwrap_or_default();
    let env = crate::backend::oci::home::with_home(env, p.user().uid(), || std::fs::read_to_string("/etc/passwd").unwrap_or_default());
    let path = super::lookup::find(Path::new("/"), prog, &env)?;
    let cstr = |s: &str| CString::new(s).with_context(|| format!("{s:?} contains a NUL byte"));
    let argv = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>>>()?;
    let path = cstr(&path)?;
    let e = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    bail!("exec: {prog:?}: {}", errno_text(e))
}

/// strerror in lower case, as runc words it ("no such file or directory").
fn errno_text(e: nix::errno::Errno) -> String {
    let s = e.desc();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s.to_string(),
    }
}
