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
//! * `wait` (nexcage's monitor starts the guest with it): opens
//!   `/.nexcage/start` (a FIFO) for reading without blocking, then waits
//!   in poll(2) for the start payload. LXC has set the guest up around it
//!   (namespaces, id map, mounts, cgroups, uid/gid, cwd). `nexcage start`
//!   writes `<nargs> <nenv>\n` and then `nargs + nenv` NUL-terminated
//!   strings; the init execs `args` with exactly `env` (PATH lookup as
//!   runc does), so the application becomes the guest's PID 1 and gets the
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
use std::os::raw::{c_char, c_int, c_short};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

const FIFO: &str = "/.nexcage/start";
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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

extern "C" {
    fn poll(fds: *mut PollFd, n: u64, timeout: c_int) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn signal(sig: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn _exit(code: c_int) -> !;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
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
        unsafe { signal(sig, on_signal) };
    }
    let mut fifo = match std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(FIFO) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nexcage-init: open {FIFO}: {e}");
            return 1;
        }
    };
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
    exec(&args, &env)
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
        // process's PATH, else runc's default; absolute entries only.
        let path = env.iter().find_map(|e| e.as_bytes().strip_prefix(b"PATH=")).unwrap_or(DEFAULT_PATH);
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
