//! A small FFI layer over liblxc (Debian's `liblxc1`, headers in `lxc-dev`,
//! `lxc/lxccontainer.h`): just what the monitor needs to start a guest in
//! the foreground and get its init's wait status, as lxcri-start does.
//! `lxc-start` discards that status (PROXMOX-FACTS §10).
//!
//! `struct lxc_container` is declared only up to the last member used:
//! liblxc keeps its ABI by appending members, and the struct is only ever
//! reached through the pointer liblxc returns, never by value.
//!
//! liblxc is opened with `dlopen` (libloading) the first time a guest is
//! started, not linked: every other nexcage command (the whole native
//! backend) then starts without loading liblxc and its five dependencies
//! (about 1.7 ms per exec on the test host), and runs on hosts without
//! `liblxc1` installed.

use std::ffi::{c_char, c_int, CString};
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

type Method = Option<unsafe extern "C" fn(*mut RawContainer) -> bool>;

#[repr(C)]
struct RawContainer {
    name: *mut c_char,
    configfile: *mut c_char,
    pidfile: *mut c_char,
    slock: *mut libc::c_void,
    privlock: *mut libc::c_void,
    numthreads: c_int,
    lxc_conf: *mut libc::c_void,
    error_string: *mut c_char,
    error_num: c_int,
    daemonize: bool,
    config_path: *mut c_char,
    is_defined: Method,
    state: Option<unsafe extern "C" fn(*mut RawContainer) -> *const c_char>,
    is_running: Method,
    freeze: Method,
    unfreeze: Method,
    init_pid: Option<unsafe extern "C" fn(*mut RawContainer) -> libc::pid_t>,
    load_config: Option<unsafe extern "C" fn(*mut RawContainer, *const c_char) -> bool>,
    start: Option<unsafe extern "C" fn(*mut RawContainer, c_int, *const *const c_char) -> bool>,
    startl: *const libc::c_void,
    stop: Method,
    want_daemonize: Option<unsafe extern "C" fn(*mut RawContainer, bool) -> bool>,
    want_close_all_fds: Option<unsafe extern "C" fn(*mut RawContainer, bool) -> bool>,
    config_file_name: *const libc::c_void,
    wait: *const libc::c_void,
    set_config_item: Option<unsafe extern "C" fn(*mut RawContainer, *const c_char, *const c_char) -> bool>,
    destroy: Method,
    save_config: *const libc::c_void,
    create: *const libc::c_void,
    createl: *const libc::c_void,
    rename: *const libc::c_void,
    reboot: Method,
    shutdown: *const libc::c_void,
    clear_config: Option<unsafe extern "C" fn(*mut RawContainer)>,
}

#[repr(C)]
struct RawLog {
    name: *const c_char,
    lxcpath: *const c_char,
    file: *const c_char,
    level: *const c_char,
    prefix: *const c_char,
    quiet: bool,
}

/// The soname Debian's `liblxc1` installs (LXC keeps its ABI within it).
const SONAME: &str = "liblxc.so.1";

/// liblxc's three entry points nexcage calls; the rest are methods of
/// `struct lxc_container`.
struct Lib {
    container_new: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut RawContainer,
    container_put: unsafe extern "C" fn(*mut RawContainer) -> c_int,
    log_init: unsafe extern "C" fn(*mut RawLog) -> c_int,
    /// Keeps the library mapped for the life of the process.
    _lib: libloading::Library,
}

/// liblxc, opened once per process; the error names the soname and package.
fn lib() -> Result<&'static Lib> {
    static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(|| open().map_err(|e| format!("cannot load {SONAME} (install liblxc1): {e}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Opens liblxc now, when it is not yet (its error, if any, comes again
/// on first use). create calls it while zfs makes the rootfs: the holder,
/// a fork of create, then finds the library mapped and initialised
/// (dlopen of liblxc and its six libraries: ~1.5 ms off the guest's
/// start). dlopen holds the loader's lock throughout, which another
/// thread's first thread-local with a destructor waits for.
pub fn preload() {
    let _ = lib();
}

fn open() -> std::result::Result<Lib, libloading::Error> {
    // SAFETY: liblxc's initialisers only set up its own globals; the
    // symbols are looked up with the C signatures lxccontainer.h declares
    // (lxc_container_new, lxc_container_put, lxc_log_init), and the fn
    // pointers are copied out while `_lib` keeps the mapping alive for
    // as long as the `Lib` (a process-wide static) exists.
    unsafe {
        let lib = libloading::Library::new(SONAME)?;
        Ok(Lib {
            container_new: *lib.get(b"lxc_container_new\0")?,
            container_put: *lib.get(b"lxc_container_put\0")?,
            log_init: *lib.get(b"lxc_log_init\0")?,
            _lib: lib,
        })
    }
}

fn cstr(s: impl AsRef<std::ffi::OsStr>) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(s.as_ref().as_bytes()).context("string with a NUL byte")
}

/// Sets liblxc's log level (`ERROR`, `WARN`, `INFO`, ...) and prefix for
/// this process, and nothing to stderr. No file here: whenever
/// `lxc_log_init` opens a file itself it also copies every ERROR line to
/// stderr, quiet or not (lxc log.c), and the holder's stderr is the
/// container's. The file is the container's `lxc.log.file` instead
/// ([`Container::set`]). Once per process.
pub fn log_level(level: &str) -> Result<()> {
    let (l, pre) = (cstr(level)?, cstr("nexcage-monitor")?);
    let none = std::ptr::null();
    let mut log = RawLog { name: none, lxcpath: none, file: none, level: l.as_ptr(), prefix: pre.as_ptr(), quiet: true };
    // SAFETY: the strings are live and NUL-terminated for the call, the
    // others NULL (which lxc_log_init takes as "not given"); liblxc copies
    // what it keeps.
    if unsafe { (lib()?.log_init)(&mut log) } != 0 {
        bail!("cannot set LXC's log level {level}");
    }
    Ok(())
}

/// A liblxc container handle (`lxc_container_new`), released on drop.
pub struct Container {
    raw: *mut RawContainer,
}

impl Container {
    /// The guest `name` under `lxc_path` (its `config` is loaded if present).
    pub fn new(name: &str, lxc_path: &Path) -> Result<Container> {
        let (n, p) = (cstr(name)?, cstr(lxc_path)?);
        // SAFETY: valid C strings; a NULL return is handled.
        let raw = unsafe { (lib()?.container_new)(n.as_ptr(), p.as_ptr()) };
        if raw.is_null() {
            bail!("liblxc cannot open container {name} in {}", lxc_path.display());
        }
        Ok(Container { raw })
    }

    /// Forgets the loaded config (LXC's `clear_config`).
    pub fn clear_config(&mut self) -> Result<()> {
        let f = self.method(|c| c.clear_config)?;
        // SAFETY: `raw` is a live container from lxc_container_new.
        unsafe { f(self.raw) };
        Ok(())
    }

    /// Loads `file` on top of the current config.
    pub fn load_config(&mut self, file: &Path) -> Result<()> {
        let f = self.method(|c| c.load_config)?;
        let s = cstr(file)?;
        // SAFETY: live container, valid C string.
        if !unsafe { f(self.raw, s.as_ptr()) } {
            bail!("LXC cannot load {}", file.display());
        }
        Ok(())
    }

    /// Sets one config item (`lxc.namespace.share.net`, ...).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let f = self.method(|c| c.set_config_item)?;
        let (k, v) = (cstr(key)?, cstr(value)?);
        // SAFETY: live container, valid C strings.
        if !unsafe { f(self.raw, k.as_ptr(), v.as_ptr()) } {
            bail!("LXC refuses {key} = {value}");
        }
        Ok(())
    }

    /// Start in the foreground (no daemonizing), keeping inherited fds.
    pub fn foreground(&mut self) -> Result<()> {
        let d = self.method(|c| c.want_daemonize)?;
        let cl = self.method(|c| c.want_close_all_fds)?;
        // SAFETY: live container.
        unsafe {
            d(self.raw, false);
            cl(self.raw, false);
        }
        Ok(())
    }

    /// Runs the guest with `argv` as its init until the init ends:
    /// (whether liblxc reports success, the init's raw wait status, which
    /// liblxc leaves in `error_num`).
    pub fn start(&mut self, argv: &[&str]) -> Result<(bool, i32)> {
        let f = self.method(|c| c.start)?;
        let owned: Vec<CString> = argv.iter().map(cstr).collect::<Result<_>>()?;
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: live container; NULL-terminated argv of C strings that
        // outlive the call (useinit 0: argv[0] is the init itself).
        let ok = unsafe { f(self.raw, 0, ptrs.as_ptr()) };
        // SAFETY: reading a plain int member of the live container.
        let status = unsafe { (*self.raw).error_num };
        Ok((ok, status))
    }

    fn method<T>(&self, get: impl Fn(&RawContainer) -> Option<T>) -> Result<T> {
        // SAFETY: `raw` is non-null and points to liblxc's container for
        // as long as `self` lives; only members of the declared prefix are read.
        get(unsafe { &*self.raw }).context("liblxc lacks a method nexcage needs")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // A Container exists only after lib() succeeded, so this is Ok.
        if let Ok(lib) = lib() {
            // SAFETY: drops the reference lxc_container_new gave us, once.
            unsafe { (lib.container_put)(self.raw) };
        }
    }
}

/// The exit code a process reaper reports for the status liblxc leaves in
/// `error_num`: the exit code, or 128+N for signal N (137 for SIGKILL).
/// liblxc encodes an init killed by signal N as `N << 8 | 0x7f` (lxc
/// start.c `signal_handler`, from waitid's `si_status`), an exit as a
/// wait status.
pub fn exit_code(status: i32) -> i32 {
    if status & 0xff == 0x7f {
        128 + ((status >> 8) & 0x7f)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// The signal that ended the guest's PID 1, if one did (same encoding as
/// [`exit_code`]).
pub fn signal(status: i32) -> Option<i32> {
    let c = exit_code(status);
    (c > 128 && (status & 0xff == 0x7f || libc::WIFSIGNALED(status))).then_some(c - 128)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exit_codes_as_runc_reports_them() {
        assert_eq!(super::exit_code(7 << 8), 7);
        assert_eq!(super::exit_code(9), 137);
        assert_eq!(super::exit_code(9 << 8 | 0x7f), 137);
        assert_eq!(super::exit_code(15 << 8 | 0x7f), 143);
        assert_eq!(super::exit_code(15), 143);
        assert_eq!(super::exit_code(0), 0);
        assert_eq!(super::signal(9 << 8 | 0x7f), Some(9));
        assert_eq!(super::signal(137 << 8), None, "exit 137 is an exit");
    }
}
