//! The per-case context: a temp dir, the runtime under test, and the
//! operations an engine performs through the runtime's command line.

use crate::bundle::{Assets, Bundle};
use crate::host::Host;
use crate::sys::{self, Exit};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A runtime under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    /// its own `--root`
    pub root: PathBuf,
}

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct CmdOut {
    pub args: Vec<String>,
    /// None: killed by a signal or timed out
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl CmdOut {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    pub fn describe(&self) -> String {
        let err = self.stderr.trim();
        let err = if err.len() > 300 { &err[err.len() - 300..] } else { err };
        let what = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed".into(),
            }
        };
        format!("`{}`: {what}{}", self.args.join(" "), if err.is_empty() { String::new() } else { format!(": {err}") })
    }
    /// Fails unless the command succeeded.
    pub fn must(self) -> Result<CmdOut> {
        if self.ok() {
            Ok(self)
        } else {
            Err(anyhow!("{}", self.describe()))
        }
    }
    /// Fails unless the command failed (non-zero exit, no timeout).
    pub fn must_fail(self, what: &str) -> Result<CmdOut> {
        if self.timed_out {
            bail!("{what}: {}", self.describe());
        }
        if self.ok() {
            bail!("{what} succeeded, but the spec requires an error");
        }
        Ok(self)
    }
}

/// How to set up a `create` (or `run`) invocation.
#[derive(Debug, Default, Clone)]
pub struct Opts {
    /// file for the runtime's (and so the container's) stdin; /dev/null if None
    pub stdin: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// files opened and placed at fds 3.. of the runtime process
    pub extra_fds: Vec<PathBuf>,
    /// `--preserve-fds N`
    pub preserve_fds: Option<usize>,
    /// extra environment for the runtime process
    pub env: Vec<(String, String)>,
    /// arguments before the subcommand (e.g. --log)
    pub global: Vec<String>,
    /// omit --pid-file
    pub no_pid_file: bool,
    /// run the runtime via `sh -c 'LISTEN_PID=$$ exec ...'` so LISTEN_PID is its pid
    pub listen_pid: bool,
    /// stdout/stderr as pipes read by the harness (what engines hand over)
    /// rather than files; only for `run`
    pub pipes: bool,
    /// the runtime starts with SIGINT and SIGQUIT ignored (as from a shell's
    /// background job) and SIGUSR1 blocked
    pub ignored_signals: bool,
}

/// A container that `create` made.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    /// The `--pid-file` pid: the process the engine reaps (0 without one).
    pub pid: i32,
    /// `state`'s pid after create: the container process as seen by the
    /// host (runtime.md), whose namespaces and cgroups the cases inspect.
    /// runc and crun: `pid`. A runtime whose reaped process is a monitor
    /// (nexcage's Proxmox backend: LXC's monitor) reports the monitor's
    /// child here; create fails the case when it is neither.
    pub state_pid: i32,
    pub out: CmdOut,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub pid_file: PathBuf,
}

impl Created {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Marker error: the case cannot run on this host. Only for host-level
/// reasons, so that it is the same for every runtime.
#[derive(Debug)]
pub struct Skip(pub String);
impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skip: {}", self.0)
    }
}
impl std::error::Error for Skip {}

pub struct Ctx<'a> {
    pub rt: &'a Runtime,
    pub host: &'a Host,
    pub assets: &'a Assets,
    /// this case's temp dir
    pub dir: PathBuf,
    /// cgroup name prefix of this suite run (`rtt-<pid>`)
    pub cg_prefix: String,
    pub case_index: usize,
    ids: Vec<String>,
    serial: u32,
}

impl<'a> Ctx<'a> {
    pub fn new(rt: &'a Runtime, host: &'a Host, assets: &'a Assets, dir: PathBuf, cg_prefix: String, case_index: usize) -> Self {
        Ctx { rt, host, assets, dir, cg_prefix, case_index, ids: Vec::new(), serial: 0 }
    }

    /// A fresh container id, remembered for cleanup.
    pub fn new_id(&mut self) -> String {
        self.serial += 1;
        let id = format!("{}-c{}-{}", self.cg_prefix, self.case_index, self.serial);
        self.ids.push(id.clone());
        id
    }

    /// A fresh bundle with a default config; its cgroupsPath is under the
    /// suite's prefix so that cleanup can find leftovers.
    pub fn bundle(&mut self) -> Result<Bundle> {
        self.serial += 1;
        let d = self.dir.join(format!("b{}", self.serial));
        std::fs::create_dir_all(&d)?;
        let cg = format!("/{}/c{}-{}", self.cg_prefix, self.case_index, self.serial);
        Bundle::create(&d, self.assets, &cg)
    }

    fn command(&self, args: &[&str], opts: &Opts) -> Command {
        let mut all: Vec<String> = vec!["--root".into(), self.rt.root.to_string_lossy().into_owned()];
        all.extend(opts.global.iter().cloned());
        all.extend(args.iter().map(|s| s.to_string()));
        let mut c = if opts.listen_pid {
            // $$ of this shell is the pid the runtime will have after exec
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg("LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"").arg(&self.rt.path).args(&all);
            c
        } else {
            let mut c = Command::new(&self.rt.path);
            c.args(&all);
            c
        };
        c.envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if opts.ignored_signals {
            // SAFETY: signal(2) and sigprocmask(2) are async-signal-safe; the
            // closure touches no memory of the parent.
            unsafe {
                c.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_IGN);
                    libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        }
        c
    }

    fn describe_args(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![self.rt.name.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// Runs the runtime with `--root` and these args; stdio to files.
    pub fn rt(&self, args: &[&str]) -> Result<CmdOut> {
        self.rt_opts(args, &Opts::default())
    }

    pub fn rt_opts(&self, args: &[&str], opts: &Opts) -> Result<CmdOut> {
        let n = next_serial();
        let out_p = self.dir.join(format!("cmd{n}.out"));
        let err_p = self.dir.join(format!("cmd{n}.err"));
        let mut c = self.command(args, opts);
        match &opts.stdin {
            Some(p) => c.stdin(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?),
            None => c.stdin(Stdio::null()),
        };
        c.stdout(std::fs::File::create(&out_p)?);
        c.stderr(std::fs::File::create(&err_p)?);
        let started = Instant::now();
        let mut child = c.spawn().with_context(|| format!("spawn {}", self.rt.path.display()))?;
        let (code, timed_out) = wait_child(&mut child, CMD_TIMEOUT)?;
        Ok(CmdOut {
            args: self.describe_args(args),
            code,
            stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
            timed_out,
            elapsed: started.elapsed(),
        })
    }

    /// `create --bundle B --pid-file F ID` as an engine does it: the runtime's
    /// stdio are files (stdout-ID / stderr-ID in the bundle) that the
    /// container inherits. Does not judge the result.
    pub fn try_create(&mut self, b: &Bundle, opts: &Opts) -> Result<(Created, bool)> {
        b.write()?;
        let id = self.new_id();
        let stdout = b.dir.join(format!("stdout-{id}"));
        let stderr = b.dir.join(format!("stderr-{id}"));
        let pid_file = b.dir.join(format!("{id}.pid"));
        let bdir = b.dir.to_string_lossy().into_owned();
        let pf = pid_file.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["create".into(), "--bundle".into(), bdir];
        if !opts.no_pid_file {
            args.push("--pid-file".into());
            args.push(pf);
        }
        if let Some(cs) = &opts.console_socket {
            args.push("--console-socket".into());
            args.push(cs.to_string_lossy().into_owned());
        }
        if let Some(n) = opts.preserve_fds {
            args.push("--preserve-fds".into());
            args.push(n.to_string());
        }
        args.push(id.clone());
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let mut c = self.command(&argv, opts);
        match &opts.stdin {
            Some(p) => c.stdin(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?),
            None => c.stdin(Stdio::null()),
        };
        c.stdout(std::fs::File::create(&stdout)?);
        c.stderr(std::fs::File::create(&stderr)?);
        let extra: Vec<std::fs::File> = opts
            .extra_fds
            .iter()
            .map(|p| std::fs::File::open(p).with_context(|| format!("open {}", p.display())))
            .collect::<Result<_>>()?;
        if !extra.is_empty() {
            let raw: Vec<i32> = extra.iter().map(|f| f.as_raw_fd()).collect();
            // SAFETY: the closure runs between fork and exec and only calls
            // dup2/fcntl, which are async-signal-safe; the source fds stay open
            // in the parent (`extra` lives until after spawn). Sources are
            // first moved above the target range so dup2 cannot clobber one.
            unsafe {
                c.pre_exec(move || {
                    let base = 100;
                    for (i, fd) in raw.iter().enumerate() {
                        if libc::dup2(*fd, base + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    for i in 0..raw.len() {
                        if libc::dup2(base + i as i32, 3 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(base + i as i32);
                    }
                    Ok(())
                });
            }
        }
        let started = Instant::now();
        let mut child = c.spawn().with_context(|| format!("spawn {}", self.rt.path.display()))?;
        drop(extra);
        let (code, timed_out) = wait_child(&mut child, CMD_TIMEOUT)?;
        let out = CmdOut {
            args: self.describe_args(&argv),
            code,
            stdout: String::new(),
            stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
            timed_out,
            elapsed: started.elapsed(),
        };
        let ok = out.ok();
        let mut pid = 0;
        let mut state_pid = 0;
        if ok && !opts.no_pid_file {
            let s = std::fs::read_to_string(&pid_file).context("create succeeded but the --pid-file is unreadable")?;
            pid = s.trim().parse().with_context(|| format!("--pid-file holds {s:?}, not a decimal pid"))?;
            state_pid = self.state(&id)?["pid"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
            if state_pid != pid && (state_pid <= 0 || crate::sys::ppid(state_pid) != pid) {
                bail!("state pid {state_pid} is neither the --pid-file pid {pid} nor a child of it");
            }
        }
        Ok((Created { id, pid, state_pid, out, stdout, stderr, pid_file }, ok))
    }

    /// `create` that must succeed.
    pub fn create_with(&mut self, b: &Bundle, opts: &Opts) -> Result<Created> {
        let (c, ok) = self.try_create(b, opts)?;
        if !ok {
            bail!("create failed: {}", c.out.describe());
        }
        Ok(c)
    }

    pub fn create(&mut self, b: &Bundle) -> Result<Created> {
        self.create_with(b, &Opts::default())
    }

    pub fn start(&self, id: &str) -> Result<CmdOut> {
        self.rt(&["start", id])?.must()
    }

    pub fn state(&self, id: &str) -> Result<Value> {
        let o = self.rt(&["state", id])?.must()?;
        serde_json::from_str(&o.stdout).with_context(|| format!("state output is not JSON: {:?}", o.stdout))
    }

    pub fn status(&self, id: &str) -> Result<String> {
        let s = self.state(id)?;
        s["status"].as_str().map(String::from).ok_or_else(|| anyhow!("state has no string status: {s}"))
    }

    /// Polls `state` until it reports `want` (containers may need a moment).
    pub fn wait_status(&self, id: &str, want: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            let s = self.status(id)?;
            if s == want {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(5) {
                bail!("state status is {s:?}, want {want:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&self, id: &str, sig: &str) -> Result<CmdOut> {
        self.rt(&["kill", id, sig])
    }

    pub fn delete(&self, id: &str) -> Result<CmdOut> {
        self.rt(&["delete", id])
    }

    /// Reaps the container's init (we are its subreaper).
    pub fn wait(&self, pid: i32) -> Result<Exit> {
        match sys::wait_pid(pid, EXIT_TIMEOUT)? {
            Some(e) => Ok(e),
            None => {
                sys::kill(pid, libc::SIGKILL);
                bail!("container process {pid} did not exit within {EXIT_TIMEOUT:?}")
            }
        }
    }

    /// create + start + reap + delete; returns (exit, stdout, stderr).
    pub fn run_detached(&mut self, b: &Bundle, opts: &Opts) -> Result<(Exit, String, String)> {
        let c = self.create_with(b, opts)?;
        self.start(&c.id)?;
        let e = self.wait(c.pid)?;
        self.delete(&c.id)?.must().context("delete of the stopped container")?;
        Ok((e, c.stdout(), c.stderr()))
    }

    /// Runs the bundle (whose args are the checker) the engine way and
    /// requires every check to pass and the process to exit 0.
    pub fn expect_checks(&mut self, b: &Bundle) -> Result<String> {
        let (e, out, err) = self.run_detached(b, &Opts::default())?;
        judge_checker(e, &out, &err)
    }

    /// `run --bundle B ID` in the foreground.
    pub fn run_fg(&mut self, b: &Bundle, opts: &Opts) -> Result<(String, CmdOut)> {
        b.write()?;
        let id = self.new_id();
        let bdir = b.dir.to_string_lossy().into_owned();
        let mut args = vec!["run".to_string(), "--bundle".into(), bdir];
        if let Some(n) = opts.preserve_fds {
            args.push("--preserve-fds".into());
            args.push(n.to_string());
        }
        args.push(id.clone());
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let mut c = self.command(&argv, opts);
        let out_p = b.dir.join(format!("run-{id}.out"));
        let err_p = b.dir.join(format!("run-{id}.err"));
        match &opts.stdin {
            Some(p) => c.stdin(std::fs::File::open(p)?),
            None => c.stdin(Stdio::null()),
        };
        let started = Instant::now();
        let (code, timed_out, stdout, stderr) = if opts.pipes {
            c.stdout(Stdio::piped());
            c.stderr(Stdio::piped());
            let child = c.spawn().with_context(|| format!("spawn {}", self.rt.path.display()))?;
            wait_piped(child, CMD_TIMEOUT)?
        } else {
            c.stdout(std::fs::File::create(&out_p)?);
            c.stderr(std::fs::File::create(&err_p)?);
            let mut child = c.spawn().with_context(|| format!("spawn {}", self.rt.path.display()))?;
            let (code, to) = wait_child(&mut child, CMD_TIMEOUT)?;
            (code, to, std::fs::read_to_string(&out_p).unwrap_or_default(), std::fs::read_to_string(&err_p).unwrap_or_default())
        };
        Ok((id, CmdOut { args: self.describe_args(&argv), code, stdout, stderr, timed_out, elapsed: started.elapsed() }))
    }

    /// Force-deletes every container this case made; reaps orphans.
    pub fn cleanup(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for id in std::mem::take(&mut self.ids) {
            match self.rt(&["delete", "--force", &id]) {
                Ok(o) if o.timed_out => problems.push(format!("delete --force {id} timed out")),
                _ => {}
            }
        }
        sys::reap_zombies();
        problems
    }

    /// A host path outside the rootfs for files that must survive the case.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Turns the checker's TAP + exit status into pass/fail.
pub fn judge_checker(e: Exit, out: &str, err: &str) -> Result<String> {
    let fails: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("not ok")).collect();
    if !fails.is_empty() {
        bail!("{}", fails.iter().map(|l| l.trim()).collect::<Vec<_>>().join("; "));
    }
    if e != Exit::Code(0) {
        let err = err.trim();
        bail!("checker {e}{}{}", if out.trim().is_empty() { " with no output" } else { "" }, if err.is_empty() { String::new() } else { format!("; stderr: {}", &err[..err.len().min(300)]) });
    }
    if !out.contains("1..") {
        bail!("checker printed no TAP plan: {out:?}");
    }
    Ok(out.to_string())
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
fn next_serial() -> u64 {
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn wait_child(child: &mut std::process::Child, timeout: Duration) -> Result<(Option<i32>, bool)> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().context("wait for runtime")? {
            return Ok((st.code(), false));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((None, true));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_piped(mut child: std::process::Child, timeout: Duration) -> Result<(Option<i32>, bool, String, String)> {
    use std::io::Read;
    let mut so = child.stdout.take().context("no stdout pipe")?;
    let mut se = child.stderr.take().context("no stderr pipe")?;
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let (code, to) = wait_child(&mut child, timeout)?;
    let o = t1.join().unwrap_or_default();
    let e = t2.join().unwrap_or_default();
    Ok((code, to, o, e))
}

/// True when `p` is inside `dir` (both absolute).
pub fn is_under(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}
