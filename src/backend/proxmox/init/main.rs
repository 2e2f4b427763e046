//! nexcage-init: PID 1 of a Proxmox-backend guest until `nexcage start`.
//!
//! Built by `build.rs` on its own (std only, no crates, glibc linked
//! statically with `-C target-feature=+crt-static`), so it runs in any
//! rootfs, and embedded in nexcage, which writes it to
//! `<lxc_dir>/init/nexcage-init`; that dir is bind-mounted read-only at
//! `/.nexcage` in the guest (`src/backend/proxmox/guest_init.rs`), as
//! lxcri does with lxcri-init.
//!
//! Modes (argv[1]):
//! * `wait` (nexcage's monitor starts the guest with it): LXC has set the
//!   guest up around it (namespaces, id map, mounts, cgroups, rlimits,
//!   cwd) and left it root with every capability the guest allows. It
//!   applies `/.nexcage/process` (written by create, see `Settings`) in
//!   runc's order: domainname, noNewPrivileges, a seccomp filter when there
//!   is no noNewPrivileges (loading one then needs CAP_SYS_ADMIN), the
//!   bounding set, additional groups, gid and uid (PR_SET_KEEPCAPS, so the
//!   capabilities survive), effective/permitted/inheritable (capset), the
//!   ambient raise (a failure is ignored, as runc does), umask. A failure
//!   ends the init (status 1, the reason on stderr) before it waits, so
//!   create fails. Then it opens
//!   `/.nexcage/start` (a FIFO) for reading without blocking, writes a
//!   byte to the FIFO `/.nexcage/ready` (opened without blocking: create,
//!   which waits for it, holds the read end; with no reader the byte is
//!   not sent), and waits in poll(2) for the start payload. `nexcage start`
//!   writes `<nargs> <nenv>\n` and then `nargs + nenv` NUL-terminated
//!   strings; the init opens `/.nexcage/ready` for writing (close-on-exec:
//!   start, which holds the read end, sees it close when the exec is
//!   over), resets every signal to its default disposition and
//!   unblocks them all (Rust ignores SIGPIPE; runc's process starts clean),
//!   loads the seccomp filter under noNewPrivileges as the very last step,
//!   and execs `args` with exactly `env` (PATH lookup as runc does), so the application becomes the guest's PID 1 and gets the
//!   stop signal itself. A writer that closes without a payload (delete)
//!   ends the init with status 0. TERM, INT, HUP, QUIT, USR1, USR2 and PWR
//!   end the waiting init with 128+N (a PID 1 ignores signals it has no
//!   handler for).
//! * `pve` (what a start by Proxmox runs, `lxc.init.cmd` in nexcage.conf):
//!   says the guest is an OCI engine's and exits 1, so `pct start` never
//!   runs the bundle's process outside its engine.
//!
//! Exit statuses when the process cannot run: 127 (not found), 126 (not
//! executable or any other exec error), as runc's engines expect; 1 for a
//! bad payload.

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::raw::{c_char, c_int, c_long, c_short, c_uint, c_ulong};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

const FIFO: &str = "/.nexcage/start";
const READY: &str = "/.nexcage/ready";
/// Written to `ready` once the init waits, by an init that writes
/// [`EXEC_FAILED`] there when its exec fails (`guest_init.rs`).
const READY_WITH_EXEC_FAILURE: &[u8] = b"2";
/// Written to `ready` when the exec of the process failed.
const EXEC_FAILED: &[u8] = b"x";
const SETTINGS: &str = "/.nexcage/process";
const O_NONBLOCK: c_int = 0o4000;
const POLLIN: c_short = 1;
const EINTR: c_int = 4;
const ENOENT: c_int = 2;
const EACCES: c_int = 13;

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `struct sock_fprog`: the filter is an array of 8-byte `sock_filter`s.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

// glibc's functions, linked statically (the init has no crates).
extern "C" {
    fn poll(fds: *mut PollFd, n: u64, timeout: c_int) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn _exit(code: c_int) -> !;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn capset(hdr: *mut CapHeader, data: *const CapData) -> c_int;
    fn setgroups(n: usize, list: *const u32) -> c_int;
    fn setgid(gid: u32) -> c_int;
    fn setuid(uid: u32) -> c_int;
    fn umask(mask: u32) -> u32;
    fn setdomainname(name: *const c_char, len: usize) -> c_int;
    fn setsid() -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
}

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

const PR_SET_KEEPCAPS: c_int = 8;
const PR_SET_SECCOMP: c_int = 22;
const PR_CAPBSET_DROP: c_int = 24;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const PR_CAP_AMBIENT: c_int = 47;
const PR_CAP_AMBIENT_RAISE: c_ulong = 2;
const SECCOMP_MODE_FILTER: c_ulong = 2;
/// seccomp(2)'s operation (linux/seccomp.h), used when there are flags.
const SECCOMP_SET_MODE_FILTER: c_uint = 1;
#[cfg(target_arch = "x86_64")]
const SYS_SECCOMP: c_long = 317;
#[cfg(target_arch = "aarch64")]
const SYS_SECCOMP: c_long = 277;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const EINVAL: c_int = 22;
const SIG_DFL: usize = 0;
const SIG_SETMASK: c_int = 2;
/// ioctl making the tty on an fd the caller's controlling terminal.
const TIOCSCTTY: c_ulong = 0x540E;

/// What create wrote to `/.nexcage/process` (`guest_init.rs`): records
/// `<tag> <length>\n<bytes>`, tags `domainname`, `groups` (gids separated
/// by spaces), `gid`, `uid`, `umask` (decimal), `nnp`, `caps` (five hex
/// masks: bounding effective permitted inheritable ambient; absent: the
/// capabilities stay as LXC left them), `seccomp` (BPF), `seccomp_flags`
/// (decimal, seccomp(2)'s filter flags; absent: none), `terminal` (`1`).
#[derive(Default)]
struct Settings {
    domainname: Option<Vec<u8>>,
    groups: Vec<u32>,
    gid: u32,
    uid: u32,
    umask: Option<u32>,
    nnp: bool,
    caps: Option<[u64; 5]>,
    seccomp: Option<Vec<u8>>,
    seccomp_flags: u32,
    /// `process.terminal`: stdin is the pty, to become the controlling
    /// terminal of the guest's session.
    terminal: bool,
}

impl Settings {
    fn parse(mut b: &[u8]) -> Result<Settings, String> {
        let mut s = Settings::default();
        let num = |v: &[u8]| -> Result<u64, String> {
            let t = std::str::from_utf8(v).map_err(|_| "not UTF-8".to_string())?;
            t.trim().parse().map_err(|_| format!("bad number {t:?}"))
        };
        while !b.is_empty() {
            let nl = b.iter().position(|c| *c == b'\n').ok_or("truncated record")?;
            let head = std::str::from_utf8(&b[..nl]).map_err(|_| "bad record head")?;
            let (tag, len) = head.split_once(' ').ok_or("bad record head")?;
            let len: usize = len.parse().map_err(|_| "bad record length")?;
            let v = b.get(nl + 1..nl + 1 + len).ok_or("truncated record")?;
            b = &b[nl + 1 + len..];
            match tag {
                "domainname" => s.domainname = Some(v.to_vec()),
                "groups" => {
                    s.groups = v.split(|c| *c == b' ').filter(|g| !g.is_empty()).map(|g| num(g).map(|n| n as u32)).collect::<Result<_, _>>()?
                }
                "gid" => s.gid = num(v)? as u32,
                "uid" => s.uid = num(v)? as u32,
                "umask" => s.umask = Some(num(v)? as u32),
                "nnp" => s.nnp = v == b"1",
                "terminal" => s.terminal = v == b"1",
                "caps" => {
                    let t = std::str::from_utf8(v).map_err(|_| "bad caps")?;
                    let m: Vec<u64> = t.split(' ').map(|h| u64::from_str_radix(h, 16)).collect::<Result<_, _>>().map_err(|_| "bad caps")?;
                    s.caps = Some(m.try_into().map_err(|_| "caps needs five masks")?);
                }
                "seccomp" => s.seccomp = Some(v.to_vec()),
                "seccomp_flags" => s.seccomp_flags = u32::try_from(num(v)?).map_err(|_| "bad seccomp_flags")?,
                _ => return Err(format!("unknown setting {tag:?}")),
            }
        }
        Ok(s)
    }
}

/// The last OS error as "what: reason".
fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Everything but the seccomp filter under noNewPrivileges, in runc's order
/// (runc's init does this before it waits on its exec FIFO).
fn apply(s: &Settings) -> Result<(), String> {
    if let Some(d) = &s.domainname {
        // SAFETY: pointer and length of a live buffer.
        if unsafe { setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(os_err("setdomainname"));
        }
    }
    if s.nnp {
        // SAFETY: prctl with integer arguments only.
        if unsafe { prctl(PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) } != 0 {
            return Err(os_err("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    } else if let Some(bpf) = &s.seccomp {
        load_seccomp(bpf, s.seccomp_flags)?;
    }
    if let Some([bnd, ..]) = s.caps {
        for cap in 0..64u64 {
            if bnd & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments only.
            if unsafe { prctl(PR_CAPBSET_DROP, cap as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) } != 0 {
                // EINVAL: past the kernel's last capability.
                if std::io::Error::last_os_error().raw_os_error() == Some(EINVAL) {
                    break;
                }
                return Err(os_err("cannot drop a capability from the bounding set"));
            }
        }
        // SAFETY: as above.
        if unsafe { prctl(PR_SET_KEEPCAPS, 1 as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) } != 0 {
            return Err(os_err("prctl(PR_SET_KEEPCAPS)"));
        }
    }
    // SAFETY: a pointer to `groups.len()` gids that outlive the call.
    if unsafe { setgroups(s.groups.len(), s.groups.as_ptr()) } != 0 {
        return Err(os_err("setgroups"));
    }
    // SAFETY: plain id arguments.
    if unsafe { setgid(s.gid) } != 0 {
        return Err(os_err(&format!("setgid {}", s.gid)));
    }
    // SAFETY: plain id arguments.
    if unsafe { setuid(s.uid) } != 0 {
        return Err(os_err(&format!("setuid {}", s.uid)));
    }
    if let Some([_, eff, prm, inh, amb]) = s.caps {
        // SAFETY: as above.
        unsafe { prctl(PR_SET_KEEPCAPS, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) };
        let mut hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let half = |m: u64, i: u32| (m >> (32 * i)) as u32;
        let data = [0, 1].map(|i| CapData { effective: half(eff, i), permitted: half(prm, i), inheritable: half(inh, i) });
        // SAFETY: a v3 header and the two data structs v3 reads.
        if unsafe { capset(&mut hdr, data.as_ptr()) } != 0 {
            return Err(os_err("capset (effective, permitted, inheritable)"));
        }
        for cap in (0..64u64).filter(|c| amb & (1 << c) != 0) {
            // A capability not in both permitted and inheritable cannot be
            // raised; runc ignores that (its library drops the error).
            // SAFETY: prctl with integer arguments only.
            unsafe { prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap as c_ulong, 0 as c_ulong, 0 as c_ulong) };
        }
    }
    if let Some(m) = s.umask {
        // SAFETY: plain integer argument.
        unsafe { umask(m) };
    }
    Ok(())
}

/// Loads the filter: prctl(2) without flags (any kernel), seccomp(2) with
/// the spec's flags (Linux >= 3.17; LOG 4.14, SPEC_ALLOW 4.17: an older
/// kernel refuses with EINVAL).
fn load_seccomp(bpf: &[u8], flags: u32) -> Result<(), String> {
    let len = u16::try_from(bpf.len() / 8).map_err(|_| "seccomp filter too long".to_string())?;
    let prog = SockFprog { len, filter: bpf.as_ptr() };
    let rc = if flags == 0 {
        // SAFETY: `prog` points at `len` sock_filters in `bpf`, alive for the call.
        unsafe { prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog as *const SockFprog) }
    } else {
        // SAFETY: as above; the other arguments are integers.
        unsafe { syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, flags as c_uint, &prog as *const SockFprog) as c_int }
    };
    if rc != 0 {
        return Err(os_err("cannot load the seccomp filter"));
    }
    Ok(())
}

/// Every signal back to SIG_DFL and none blocked: what the application
/// starts with under runc (SIGPIPE is ignored by Rust's runtime, the
/// engine may have ignored SIGINT/SIGQUIT).
fn reset_signals() {
    for sig in 1..65 {
        // SAFETY: SIG_DFL runs no code; invalid numbers (SIGKILL, SIGSTOP,
        // glibc's reserved ones) only fail.
        unsafe { signal(sig, SIG_DFL) };
    }
    let none = SigSet([0; 16]);
    // SAFETY: a valid, empty set; no old set wanted.
    unsafe { sigprocmask(SIG_SETMASK, &none, std::ptr::null_mut()) };
}

extern "C" fn on_signal(sig: c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { _exit(128 + sig) }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let code = match mode.as_str() {
        "wait" => wait_and_exec(),
        "pve" => {
            eprintln!("nexcage-init: this guest belongs to an OCI engine (nexcage); start it with its engine, not with Proxmox");
            1
        }
        _ => {
            eprintln!("nexcage-init: usage: nexcage-init wait|pve");
            1
        }
    };
    std::process::exit(code);
}

fn wait_and_exec() -> i32 {
    for sig in [1, 2, 3, 10, 12, 15, 30] {
        // SAFETY: installs a handler that only calls _exit.
        unsafe { signal(sig, on_signal as extern "C" fn(c_int) as usize) };
    }
    let settings = match std::fs::read(SETTINGS).map_err(|e| format!("read {SETTINGS}: {e}")).and_then(|b| Settings::parse(&b)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nexcage-init: {SETTINGS}: {e}");
            return 1;
        }
    };
    if let Err(e) = apply(&settings) {
        eprintln!("nexcage-init: {e}");
        return 1;
    }
    let mut fifo = match std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(FIFO) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nexcage-init: open {FIFO}: {e}");
            return 1;
        }
    };
    // Best effort: without it create still finds the init, at its next check.
    // "2": this init also says when its exec fails (below); an older one
    // wrote "1" and did not.
    if let Some(mut r) = open_ready() {
        let _ = std::io::Write::write_all(&mut r, READY_WITH_EXEC_FAILURE);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&fifo);
    let mut p = PollFd { fd, events: POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd, no timeout.
        let r = unsafe { poll(&mut p, 1, -1) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            break;
        }
    }
    // Blocking reads from here on (F_SETFL = 4): the writer sends it all at once.
    // SAFETY: plain fcntl on our own fd.
    unsafe { fcntl(fd, 4, 0) };
    let mut payload = Vec::new();
    if let Err(e) = fifo.read_to_end(&mut payload) {
        eprintln!("nexcage-init: read {FIFO}: {e}");
        return 1;
    }
    drop(fifo);
    if payload.is_empty() {
        return 0;
    }
    let Some((args, env)) = parse(&payload) else {
        eprintln!("nexcage-init: bad start payload");
        return 1;
    };
    // Tells start that the exec is over: held (O_CLOEXEC) until a
    // successful execve closes it, or the exit after a failed one. Opened
    // before a noNewPrivileges seccomp filter is loaded (below); one
    // without noNewPrivileges is on already, and should it refuse the open,
    // start only notices the exec later (at its safety step).
    let exec_signal = open_ready();
    if settings.terminal {
        // As runc's init: its own session, with the pty (stdin) as the
        // controlling terminal, so that ^C and job control reach the
        // process. Best effort: without it the process still runs.
        // SAFETY: setsid and TIOCSCTTY take no pointers; fd 0 is ours.
        unsafe {
            setsid();
            ioctl(0, TIOCSCTTY, 0 as c_int);
        }
    }
    reset_signals();
    if let (true, Some(bpf)) = (settings.nnp, &settings.seccomp) {
        if let Err(e) = load_seccomp(bpf, settings.seccomp_flags) {
            eprintln!("nexcage-init: {e}");
            return 1;
        }
    }
    let code = exec(&args, &env);
    // The exec failed: said through `ready` before the exit closes it, so
    // that start tells this 127/126 from a program that ran and exited at
    // once with the same status (runc's start fails only for the former).
    if let Some(mut w) = exec_signal {
        let _ = std::io::Write::write_all(&mut w, EXEC_FAILED);
    }
    code
}

/// The write end of `/.nexcage/ready`, opened without blocking and
/// close-on-exec (std's default); None when no one holds the read end
/// (ENXIO) or the open is refused.
fn open_ready() -> Option<std::fs::File> {
    std::fs::OpenOptions::new().write(true).custom_flags(O_NONBLOCK).open(READY).ok()
}

/// `<nargs> <nenv>\n` then NUL-terminated strings.
fn parse(b: &[u8]) -> Option<(Vec<CString>, Vec<CString>)> {
    let nl = b.iter().position(|c| *c == b'\n')?;
    let head = std::str::from_utf8(&b[..nl]).ok()?;
    let (na, ne) = head.split_once(' ')?;
    let (na, ne): (usize, usize) = (na.parse().ok()?, ne.parse().ok()?);
    let body = &b[nl + 1..];
    let mut items: Vec<CString> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let end = rest.iter().position(|c| *c == 0)?;
        items.push(CString::new(&rest[..end]).ok()?);
        rest = &rest[end + 1..];
    }
    if items.len() != na + ne || na == 0 {
        return None;
    }
    let env = items.split_off(na);
    Some((items, env))
}

fn exec(args: &[CString], env: &[CString]) -> i32 {
    let name = args[0].as_bytes();
    let candidates: Vec<Vec<u8>> = if name.contains(&b'/') {
        vec![name.to_vec()]
    } else {
        // The rule of create's check (src/backend/proxmox/lookup.rs): the
        // process's PATH, absolute entries only; without one, nothing is
        // found (as runc's lookup in an environment without PATH).
        let path = env.iter().find_map(|e| e.as_bytes().strip_prefix(b"PATH=")).unwrap_or_default();
        path.split(|c| *c == b':').filter(|d| d.starts_with(b"/")).map(|d| [d, b"/", name].concat()).collect()
    };
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut denied = false;
    let mut last = ENOENT;
    for c in &candidates {
        let Ok(path) = CString::new(c.clone()) else { continue };
        // SAFETY: NUL-terminated argv/envp of valid C strings that outlive the call.
        unsafe { execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        last = std::io::Error::last_os_error().raw_os_error().unwrap_or(ENOENT);
        if last == EACCES {
            denied = true;
        } else if last != ENOENT && last != 20 {
            break;
        }
    }
    let shown = OsStr::from_bytes(name).to_string_lossy();
    if denied || last == EACCES {
        eprintln!("exec: \"{shown}\": permission denied");
        126
    } else if last == ENOENT && !name.contains(&b'/') {
        eprintln!("exec: \"{shown}\": executable file not found in $PATH");
        127
    } else if last == ENOENT {
        eprintln!("exec: \"{shown}\": no such file or directory");
        127
    } else {
        eprintln!("exec: \"{shown}\": {}", std::io::Error::from_raw_os_error(last));
        126
    }
}
