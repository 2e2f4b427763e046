//! rtt-checker: runs as (or under) the process of an OCI container and checks,
//! from the inside, what the OCI runtime spec promises.
//!
//! Usage: `rtt-checker [--json] CHECK...` where each CHECK is `key=value`
//! (see `run_check` for the keys), or `@FILE` to read further checks from a
//! file inside the rootfs: a JSON array of strings, or one check per line. Checks run in order; a few keys are
//! actions (`action.*`) rather than checks. Results go to stdout as TAP (the
//! default) or one JSON object (`--json`); the exit status is 0 when all
//! checks pass, 1 when any fails, 2 on a usage error.
//!
//! The binary is built static (crt-static) and makes no NSS calls, so it runs
//! in a busybox rootfs: uids, gids and capability names are numeric or built in.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

type Check = Result<String, String>;

struct Outcome {
    check: String,
    ok: bool,
    detail: String,
}

fn main() {
    let mut json = false;
    let mut checks: Vec<String> = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--json" {
            json = true;
        } else if a == "--help" || a == "-h" {
            println!("usage: rtt-checker [--json] key=value... | @file");
            return;
        } else if let Some(f) = a.strip_prefix('@') {
            match fs::read_to_string(f) {
                Ok(s) if s.trim_start().starts_with('[') => match parse_json_strings(&s) {
                    Some(v) => checks.extend(v),
                    None => {
                        eprintln!("rtt-checker: {f}: want a JSON array of strings");
                        std::process::exit(2);
                    }
                },
                Ok(s) => checks.extend(
                    s.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(String::from),
                ),
                Err(e) => {
                    eprintln!("rtt-checker: cannot read {f}: {e}");
                    std::process::exit(2);
                }
            }
        } else {
            checks.push(a);
        }
    }
    let mut out = Vec::new();
    for c in &checks {
        let r = match c.split_once('=') {
            Some((k, v)) => run_check(k, v),
            None => Err(format!("malformed check {c:?}, want key=value")),
        };
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        if !json {
            // TAP streams as we go, so a check that kills us still leaves the
            // earlier results behind.
            let n = out.len() + 1;
            if ok {
                println!("ok {n} - {c}");
            } else {
                println!("not ok {n} - {c} # {}", detail.replace('\n', " "));
            }
        }
        out.push(Outcome { check: c.clone(), ok, detail });
    }
    let failed = out.iter().filter(|o| !o.ok).count();
    if json {
        let items: Vec<String> = out
            .iter()
            .map(|o| {
                format!(
                    "{{\"check\":{},\"ok\":{},\"detail\":{}}}",
                    jstr(&o.check),
                    o.ok,
                    jstr(&o.detail)
                )
            })
            .collect();
        println!(
            "{{\"results\":[{}],\"passed\":{},\"failed\":{}}}",
            items.join(","),
            out.len() - failed,
            failed
        );
    } else {
        println!("1..{}", out.len());
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

/// Parses `["check", ...]` (a JSON array of strings; no other JSON).
fn parse_json_strings(s: &str) -> Option<Vec<String>> {
    let mut it = s.trim().chars().peekable();
    if it.next()? != '[' {
        return None;
    }
    let mut out = Vec::new();
    loop {
        while it.peek().map(|c| c.is_whitespace() || *c == ',').unwrap_or(false) {
            it.next();
        }
        match it.next()? {
            ']' => break,
            '"' => {}
            _ => return None,
        }
        let mut cur = String::new();
        loop {
            match it.next()? {
                '"' => break,
                '\\' => match it.next()? {
                    'n' => cur.push('\n'),
                    't' => cur.push('\t'),
                    'r' => cur.push('\r'),
                    'u' => {
                        let h: String = (0..4).filter_map(|_| it.next()).collect();
                        cur.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    c => cur.push(c),
                },
                c => cur.push(c),
            }
        }
        out.push(cur);
    }
    Some(out)
}

fn jstr(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_name(e: i32) -> String {
    let n = match e {
        0 => "OK",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSUP => "ENOTSUP",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno{e}"),
    };
    n.to_string()
}

fn status_field(name: &str) -> Result<String, String> {
    let s = fs::read_to_string("/proc/self/status").map_err(|e| format!("read /proc/self/status: {e}"))?;
    for l in s.lines() {
        if let Some(rest) = l.strip_prefix(name) {
            if let Some(v) = rest.strip_prefix(':') {
                return Ok(v.trim().to_string());
            }
        }
    }
    Err(format!("no {name} in /proc/self/status"))
}

fn eq(got: impl AsRef<str>, want: &str) -> Check {
    let g = got.as_ref().trim();
    if g == want.trim() {
        Ok(g.to_string())
    } else {
        Err(format!("got {g:?}, want {:?}", want.trim()))
    }
}

fn split2<'a>(v: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    v.split_once(':').ok_or_else(|| format!("{what}: want A:B, got {v:?}"))
}

fn parse_caps(v: &str) -> Result<u64, String> {
    let mut m = 0u64;
    for n in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let up = n.to_ascii_uppercase();
        let up = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
        let i = CAPS.iter().position(|c| *c == up).ok_or_else(|| format!("unknown capability {n}"))?;
        m |= 1 << i;
    }
    Ok(m)
}

fn cap_names(m: u64) -> String {
    let v: Vec<&str> = (0..64)
        .filter(|i| m & (1 << i) != 0)
        .map(|i| CAPS.get(i).copied().unwrap_or("CAP_?"))
        .collect();
    v.join(",")
}

fn rlimit_res(name: &str) -> Option<u32> {
    let n = name.to_ascii_uppercase();
    let n = n.strip_prefix("RLIMIT_").unwrap_or(&n);
    Some(match n {
        "CPU" => libc::RLIMIT_CPU,
        "FSIZE" => libc::RLIMIT_FSIZE,
        "DATA" => libc::RLIMIT_DATA,
        "STACK" => libc::RLIMIT_STACK,
        "CORE" => libc::RLIMIT_CORE,
        "RSS" => libc::RLIMIT_RSS,
        "NPROC" => libc::RLIMIT_NPROC,
        "NOFILE" => libc::RLIMIT_NOFILE,
        "MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "AS" => libc::RLIMIT_AS,
        "LOCKS" => libc::RLIMIT_LOCKS,
        "SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "NICE" => libc::RLIMIT_NICE,
        "RTPRIO" => libc::RLIMIT_RTPRIO,
        "RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// One line of /proc/self/mountinfo.
struct Mnt {
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_opts: Vec<String>,
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

fn mountinfo() -> Result<Vec<Mnt>, String> {
    let s = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read mountinfo: {e}"))?;
    let mut v = Vec::new();
    for l in s.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else { continue };
        if f.len() < dash + 3 || dash < 6 {
            continue;
        }
        v.push(Mnt {
            point: unescape(f[4]),
            opts: f[5].split(',').map(String::from).collect(),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            fstype: f[dash + 1].to_string(),
            super_opts: f.get(dash + 3).map(|s| s.split(',').map(String::from).collect()).unwrap_or_default(),
        });
    }
    Ok(v)
}

/// The topmost (last listed) mount at exactly `p`.
fn mount_at(p: &str) -> Result<Option<Mnt>, String> {
    Ok(mountinfo()?.into_iter().rfind(|m| m.point == p))
}

fn cstr(p: &str) -> Result<CString, String> {
    CString::new(p).map_err(|_| format!("NUL in {p:?}"))
}

fn try_write_in(path: &str) -> i32 {
    let md = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return e.raw_os_error().unwrap_or(-1),
    };
    let target = if md.is_dir() { format!("{}/.rtt-write-probe", path.trim_end_matches('/')) } else { path.to_string() };
    let Ok(c) = CString::new(target.clone()) else { return -1 };
    let flags = if md.is_dir() { libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC } else { libc::O_WRONLY | libc::O_CLOEXEC };
    // SAFETY: c is a valid NUL-terminated string that outlives the call; the fd is closed below.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return errno();
    }
    // SAFETY: fd was just returned by open and is owned here.
    unsafe { libc::close(fd) };
    if md.is_dir() {
        let _ = fs::remove_file(&target);
    }
    0
}

fn raw_syscall(name: &str) -> Result<i32, String> {
    let dir = cstr("/tmp/.rtt-seccomp-probe")?;
    let root = cstr("/")?;
    let mut uts: libc::utsname = unsafe {
        // SAFETY: utsname is plain old data; all-zero is a valid value.
        std::mem::zeroed()
    };
    let mut buf = [0u8; 256];
    // SAFETY: each syscall gets valid pointers to live buffers/strings above,
    // with sizes that match; none of them touches memory we do not own.
    let r = unsafe {
        match name {
            "mkdir" => libc::syscall(libc::SYS_mkdir, dir.as_ptr(), 0o755),
            "mkdirat" => libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, dir.as_ptr(), 0o755),
            "chdir" => libc::syscall(libc::SYS_chdir, root.as_ptr()),
            "uname" => libc::syscall(libc::SYS_uname, &mut uts as *mut libc::utsname),
            "getcwd" => libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()),
            "getppid" => libc::syscall(libc::SYS_getppid),
            "sync" => libc::syscall(libc::SYS_sync),
            _ => return Err(format!("checker does not know syscall {name}")),
        }
    };
    let e = if r < 0 { errno() } else { 0 };
    if name.starts_with("mkdir") && r >= 0 {
        let _ = fs::remove_dir("/tmp/.rtt-seccomp-probe");
    }
    Ok(e)
}

fn list_fds() -> Result<Vec<i32>, String> {
    // read_dir opens one fd of its own; drop the one that no longer exists afterwards.
    let mut v: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("read /proc/self/fd: {e}"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.retain(|fd| {
        // SAFETY: F_GETFD only queries the descriptor table.
        (unsafe { libc::fcntl(*fd, libc::F_GETFD) }) >= 0
    });
    v.sort();
    Ok(v)
}

fn parse_list(v: &str) -> Vec<i64> {
    let mut o: Vec<i64> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    o.sort();
    o.dedup();
    o
}

fn run_check(k: &str, v: &str) -> Check {
    match k {
        "uid" | "gid" => {
            let f = status_field(if k == "uid" { "Uid" } else { "Gid" })?;
            let ids: Vec<&str> = f.split_whitespace().collect();
            // real, effective, saved, fs must all be the requested id
            if ids.iter().all(|i| *i == v) {
                Ok(f)
            } else {
                Err(format!("{k}s (real eff saved fs) = {f}, want all {v}"))
            }
        }
        "groups" => {
            let got = parse_list(&status_field("Groups")?.replace(' ', ","));
            let want = parse_list(v);
            if got == want {
                Ok(format!("{got:?}"))
            } else {
                Err(format!("supplementary groups {got:?}, want {want:?}"))
            }
        }
        "umask" => {
            let got = status_field("Umask")?;
            let g = u32::from_str_radix(&got, 8).map_err(|e| e.to_string())?;
            let w = u32::from_str_radix(v, 8).map_err(|e| e.to_string())?;
            if g == w {
                Ok(got)
            } else {
                Err(format!("umask {g:04o}, want {w:04o}"))
            }
        }
        "cwd" => eq(std::env::current_dir().map_err(|e| e.to_string())?.to_string_lossy(), v),
        "hostname" | "domainname" => {
            let mut u: libc::utsname = unsafe {
                // SAFETY: utsname is plain old data; all-zero is valid.
                std::mem::zeroed()
            };
            // SAFETY: u is a valid, writable utsname.
            if unsafe { libc::uname(&mut u) } != 0 {
                return Err(format!("uname: {}", errno_name(errno())));
            }
            let field = if k == "hostname" { &u.nodename } else { &u.domainname };
            let bytes: Vec<u8> = field.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
            eq(String::from_utf8_lossy(&bytes), v)
        }
        "env" => {
            let (name, val) = v.split_once('=').ok_or("env: want NAME=VALUE")?;
            match std::env::var(name) {
                Ok(g) if g == val => Ok(g),
                Ok(g) => Err(format!("{name}={g:?}, want {val:?}")),
                Err(_) => Err(format!("{name} not set")),
            }
        }
        "noenv" => match std::env::var(v) {
            Ok(g) => Err(format!("{v} is set to {g:?}")),
            Err(_) => Ok("unset".into()),
        },
        "cap.bnd" | "cap.eff" | "cap.prm" | "cap.inh" | "cap.amb" => {
            let field = match k {
                "cap.bnd" => "CapBnd",
                "cap.eff" => "CapEff",
                "cap.prm" => "CapPrm",
                "cap.inh" => "CapInh",
                _ => "CapAmb",
            };
            let got = u64::from_str_radix(&status_field(field)?, 16).map_err(|e| e.to_string())?;
            let want = parse_caps(v)?;
            if got == want {
                Ok(format!("{got:#x}"))
            } else {
                Err(format!(
                    "{field} {got:#x}; missing [{}]; extra [{}]",
                    cap_names(want & !got),
                    cap_names(got & !want)
                ))
            }
        }
        "nnp" => eq(status_field("NoNewPrivs")?, v),
        "seccomp.mode" => eq(status_field("Seccomp")?, v),
        "rlimit" => {
            let parts: Vec<&str> = v.split(':').collect();
            if parts.len() != 3 {
                return Err("rlimit: want NAME:SOFT:HARD".into());
            }
            let res = rlimit_res(parts[0]).ok_or_else(|| format!("unknown rlimit {}", parts[0]))?;
            let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: rl is a valid, writable rlimit.
            if unsafe { libc::getrlimit(res as _, &mut rl) } != 0 {
                return Err(format!("getrlimit: {}", errno_name(errno())));
            }
            let f = |x: libc::rlim_t| if x == libc::RLIM_INFINITY { "unlimited".to_string() } else { x.to_string() };
            eq(format!("{}:{}:{}", parts[0], f(rl.rlim_cur), f(rl.rlim_max)), v)
        }
        "oom" => eq(fs::read_to_string("/proc/self/oom_score_adj").map_err(|e| e.to_string())?, v),
        "pid" => eq(std::process::id().to_string(), v),
        "mount" => {
            // PATH:FSTYPE[:opt,opt...]; each opt must be a per-mount or superblock option
            let mut it = v.splitn(3, ':');
            let p = it.next().unwrap_or("");
            let fst = it.next().unwrap_or("");
            let opts = it.next().unwrap_or("");
            let m = mount_at(p)?.ok_or_else(|| format!("nothing mounted at {p}"))?;
            if !fst.is_empty() && m.fstype != fst {
                return Err(format!("{p} is {}, want {fst}", m.fstype));
            }
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                if !m.opts.iter().chain(m.super_opts.iter()).any(|x| x == o) {
                    return Err(format!("{p}: option {o} missing in {} / {}", m.opts.join(","), m.super_opts.join(",")));
                }
            }
            Ok(format!("{} {} {}", m.fstype, m.opts.join(","), m.super_opts.join(",")))
        }
        "mount.propagation" => {
            let (p, want) = split2(v, k)?;
            let m = mount_at(p)?.ok_or_else(|| format!("nothing mounted at {p}"))?;
            let shared = m.optional.iter().any(|o| o.starts_with("shared:"));
            let slave = m.optional.iter().any(|o| o.starts_with("master:"));
            let ok = match want {
                "shared" => shared,
                "slave" => slave && !shared,
                "private" => !shared && !slave,
                "not-shared" => !shared,
                _ => return Err(format!("unknown propagation {want}")),
            };
            if ok {
                Ok(m.optional.join(" "))
            } else {
                Err(format!("{p} optional fields [{}], want {want}", m.optional.join(" ")))
            }
        }
        "mount.order" => {
            // A,B,C: these mount points appear in mountinfo in this order
            let ms = mountinfo()?;
            let mut last = 0usize;
            for p in v.split(',') {
                let i = ms.iter().rposition(|m| m.point == p).ok_or_else(|| format!("{p} not mounted"))?;
                if i < last {
                    return Err(format!("{p} mounted before the previous entry"));
                }
                last = i;
            }
            Ok("in order".into())
        }
        "nomount" => match mount_at(v)? {
            None => Ok("not mounted".into()),
            Some(m) => Err(format!("{v} is mounted ({})", m.fstype)),
        },
        "ro" => match try_write_in(v) {
            libc::EROFS => Ok("EROFS".into()),
            e => Err(format!("writing in {v}: {}, want EROFS", errno_name(e))),
        },
        "rw" => match try_write_in(v) {
            0 => Ok("writable".into()),
            e => Err(format!("writing in {v}: {}", errno_name(e))),
        },
        "masked" => {
            let md = match fs::metadata(v) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("absent".into()),
                Err(e) => return Err(format!("stat {v}: {e}")),
            };
            if md.is_dir() {
                let n = fs::read_dir(v).map_err(|e| format!("readdir {v}: {e}"))?.count();
                if n == 0 {
                    Ok("empty dir".into())
                } else {
                    Err(format!("{v} lists {n} entries"))
                }
            } else {
                let mut buf = Vec::new();
                match fs::File::open(v).and_then(|f| f.take(4096).read_to_end(&mut buf)) {
                    Ok(0) => Ok("reads empty".into()),
                    Ok(n) => Err(format!("{v} readable: {n} bytes")),
                    Err(e) => Ok(format!("unreadable: {e}")),
                }
            }
        }
        "exists" => fs::symlink_metadata(v).map(|_| "exists".to_string()).map_err(|e| format!("{v}: {e}")),
        "absent" => match fs::symlink_metadata(v) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("absent".into()),
            Err(e) => Err(format!("{v}: {e}")),
            Ok(_) => Err(format!("{v} exists")),
        },
        "chardev" => {
            // PATH:MAJOR:MINOR[:MODE[:UID:GID]]
            let p: Vec<&str> = v.split(':').collect();
            if p.len() < 3 {
                return Err("chardev: want PATH:MAJOR:MINOR[:MODE[:UID:GID]]".into());
            }
            let md = fs::symlink_metadata(p[0]).map_err(|e| format!("{}: {e}", p[0]))?;
            if !md.file_type().is_char_device() {
                return Err(format!("{} is not a char device", p[0]));
            }
            let (ma, mi) = (libc::major(md.rdev()), libc::minor(md.rdev()));
            if ma.to_string() != p[1] || mi.to_string() != p[2] {
                return Err(format!("{} is {ma}:{mi}, want {}:{}", p[0], p[1], p[2]));
            }
            if let Some(mode) = p.get(3) {
                let got = md.permissions().mode() & 0o7777;
                let want = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
                if got != want {
                    return Err(format!("{} mode {got:04o}, want {want:04o}", p[0]));
                }
            }
            if let (Some(u), Some(g)) = (p.get(4), p.get(5)) {
                if md.uid().to_string() != *u || md.gid().to_string() != *g {
                    return Err(format!("{} owned {}:{}, want {u}:{g}", p[0], md.uid(), md.gid()));
                }
            }
            Ok(format!("{ma}:{mi}"))
        }
        "symlink" => {
            let (p, t) = split2(v, k)?;
            let got = fs::read_link(p).map_err(|e| format!("readlink {p}: {e}"))?;
            eq(got.to_string_lossy(), t)
        }
        "file" => {
            let (p, c) = split2(v, k)?;
            eq(fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?, c)
        }
        "filehas" => {
            let (p, c) = split2(v, k)?;
            let s = fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            if s.contains(c) {
                Ok("found".into())
            } else {
                Err(format!("{p} lacks {c:?}"))
            }
        }
        "open" => {
            // PATH:r|w|rw:OK|ERRNONAME
            let p: Vec<&str> = v.split(':').collect();
            if p.len() != 3 {
                return Err("open: want PATH:r|w|rw:RESULT".into());
            }
            let flags = match p[1] {
                "r" => libc::O_RDONLY,
                "w" => libc::O_WRONLY,
                _ => libc::O_RDWR,
            };
            let c = cstr(p[0])?;
            // SAFETY: c is a valid C string; the fd is closed right away.
            let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) };
            let got = if fd < 0 { errno_name(errno()) } else { "OK".to_string() };
            if fd >= 0 {
                // SAFETY: fd is owned here.
                unsafe { libc::close(fd) };
            }
            eq(got, p[2])
        }
        "seccomp" => {
            let (sc, want) = split2(v, k)?;
            eq(errno_name(raw_syscall(sc)?), want)
        }
        "tty" => {
            for fd in parse_list(v) {
                // SAFETY: isatty only inspects the descriptor.
                if unsafe { libc::isatty(fd as i32) } != 1 {
                    return Err(format!("fd {fd} is not a tty"));
                }
            }
            Ok("ttys".into())
        }
        "notty" => {
            for fd in parse_list(v) {
                // SAFETY: isatty only inspects the descriptor.
                if unsafe { libc::isatty(fd as i32) } == 1 {
                    return Err(format!("fd {fd} is a tty"));
                }
            }
            Ok("not ttys".into())
        }
        "fds" => {
            let got = list_fds()?;
            let want: Vec<i32> = parse_list(v).into_iter().map(|x| x as i32).collect();
            if got == want {
                Ok(format!("{got:?}"))
            } else {
                Err(format!("open fds {got:?}, want {want:?}"))
            }
        }
        "fdtype" => {
            // FD:pipe|file|chr|socket
            let (fd, t) = split2(v, k)?;
            let md = fs::metadata(format!("/proc/self/fd/{fd}")).map_err(|e| format!("fd {fd}: {e}"))?;
            let ft = md.file_type();
            let got = if ft.is_fifo() {
                "pipe"
            } else if ft.is_char_device() {
                "chr"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_file() {
                "file"
            } else {
                "other"
            };
            eq(got, t)
        }
        "fdread" => {
            let (fd, c) = split2(v, k)?;
            let s = fs::read_to_string(format!("/proc/self/fd/{fd}")).map_err(|e| format!("fd {fd}: {e}"))?;
            eq(s, c)
        }
        "stdin" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| e.to_string())?;
            eq(s, v)
        }
        "sysctl" => {
            let (key, val) = split2(v, k)?;
            let p = format!("/proc/sys/{}", key.replace('.', "/"));
            eq(fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?.replace('\t', " "), val)
        }
        "uidmap" | "gidmap" => {
            let p = if k == "uidmap" { "/proc/self/uid_map" } else { "/proc/self/gid_map" };
            let s = fs::read_to_string(p).map_err(|e| e.to_string())?;
            let norm = |x: &str| x.split_whitespace().collect::<Vec<_>>().join(" ");
            eq(norm(&s), &norm(v))
        }
        "cpus" => eq(status_field("Cpus_allowed_list")?, v),
        "mems" => eq(status_field("Mems_allowed_list")?, v),
        "cgfile" => {
            let (f, val) = split2(v, k)?;
            let p = format!("/sys/fs/cgroup/{f}");
            eq(fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?, val)
        }
        "net.ifaces" => {
            let s = fs::read_to_string("/proc/net/dev").map_err(|e| e.to_string())?;
            let mut got: Vec<&str> = s.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
            got.sort();
            let mut want: Vec<&str> = v.split(',').collect();
            want.sort();
            eq(got.join(","), &want.join(","))
        }
        "forklimit" => forklimit(v),
        "action.alloc" => {
            // allocate and touch N MiB; survives only if the memory limit allows it
            let mb: usize = v.parse().map_err(|_| "action.alloc: want MiB")?;
            let mut keep: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mb {
                let mut chunk = vec![0u8; 1 << 20];
                for i in (0..chunk.len()).step_by(4096) {
                    chunk[i] = 1;
                }
                keep.push(chunk);
            }
            Ok(format!("touched {} MiB", keep.len()))
        }
        "action.sleep" => {
            let ms: f64 = v.parse().map_err(|_| "action.sleep: want seconds")?;
            std::thread::sleep(std::time::Duration::from_secs_f64(ms));
            Ok("slept".into())
        }
        "action.write" => {
            let (p, c) = split2(v, k)?;
            fs::write(p, c).map(|_| "written".to_string()).map_err(|e| format!("{p}: {e}"))
        }
        "action.exit" => {
            let code: i32 = v.parse().map_err(|_| "action.exit: want a number")?;
            std::process::exit(code);
        }
        _ => Err(format!("unknown check {k}")),
    }
}

/// Forks paused children until fork fails; passes when fork failed with EAGAIN
/// before `limit` children existed (the pids controller's limit counts this
/// process too).
fn forklimit(v: &str) -> Check {
    let limit: usize = v.parse().map_err(|_| "forklimit: want N")?;
    let mut kids = Vec::new();
    let mut err = 0;
    for _ in 0..limit + 5 {
        // SAFETY: the child only calls async-signal-safe pause/_exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child: block until killed.
            unsafe {
                libc::pause();
                libc::_exit(0);
            }
        }
        if pid < 0 {
            err = errno();
            break;
        }
        kids.push(pid);
    }
    let n = kids.len();
    for k in kids {
        // SAFETY: k is our own child; kill + waitpid on it are sound.
        unsafe {
            libc::kill(k, libc::SIGKILL);
            libc::waitpid(k, std::ptr::null_mut(), 0);
        }
    }
    if err == libc::EAGAIN && n < limit {
        Ok(format!("fork failed with EAGAIN after {n} children"))
    } else if err == 0 {
        Err(format!("forked {n} children without hitting a limit of {limit}"))
    } else {
        Err(format!("fork failed with {} after {n} children", errno_name(err)))
    }
}
