//! The pty of a foreground `run` with `process.terminal` and no
//! `--console-socket`: as runc (`tty.go`), nexcage takes the pty master
//! itself, through a console socket of its own that the backend sends it
//! to, and relays it to its own stdio: stdin to the pty, the pty to stdout,
//! its terminal (when stdin is one) in raw mode and its size given to the
//! pty, again on every SIGWINCH; the terminal is restored at the end.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A listening console socket in a private temporary directory (removed
/// with it).
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl ConsoleSocket {
    /// Binds `console.sock` in a new directory under the temporary
    /// directory that only its owner can enter (a socket path must fit
    /// 108 bytes, which a state dir under a long id does not).
    pub fn bind() -> Result<ConsoleSocket> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("nexcage-console-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join("console.sock");
        match UnixListener::bind(&path) {
            Ok(listener) => Ok(ConsoleSocket { listener, path }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e).with_context(|| format!("bind {}", path.display()))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the relay of the pty sent for our child `pid`; should that
    /// fail, `pid` is killed and reaped (it would run with no one at its
    /// terminal).
    pub fn relay_for(self, pid: i32) -> Result<Relay> {
        self.receive().and_then(Relay::start).inspect_err(|_| {
            let _ = crate::proc::signal(pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        })
    }

    /// The pty master the backend sent (it connected during create, so
    /// the connection waits in the backlog). Errors: none sent.
    fn receive(self) -> Result<OwnedFd> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        self.listener.set_nonblocking(true)?;
        let (conn, _) = self.listener.accept().context("the container's pty was not sent to nexcage's console socket")?;
        conn.set_nonblocking(false)?;
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).context("receive the pty master")?;
        for c in msg.cmsgs().context("the console socket's message")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS installed this fd in our table just
                    // now; nothing else owns it.
                    return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) });
                }
            }
        }
        bail!("the console socket's message carried no pty master")
    }
}

/// The relay under way; [`Relay::finish`] ends it.
pub struct Relay {
    output: std::thread::JoinHandle<()>,
    /// Set when the process has ended.
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    saved: Option<nix::sys::termios::Termios>,
    winch: signal_hook::iterator::Handle,
}

impl Relay {
    /// Starts relaying `master` to and from this process's stdio.
    pub fn start(master: OwnedFd) -> Result<Relay> {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = if nix::unistd::isatty(stdin.as_raw_fd()).unwrap_or(false) {
            let t = termios::tcgetattr(stdin.as_fd()).context("read the terminal's settings")?;
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw).context("set the terminal raw")?;
            Some(t)
        } else {
            None
        };
        resize(master.as_raw_fd());
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])?;
        let winch = signals.handle();
        let m = master.try_clone()?;
        std::thread::spawn(move || {
            for _ in signals.forever() {
                resize(m.as_raw_fd());
            }
        });
        let mut to_pty = std::fs::File::from(master.try_clone()?);
        // Ends with the process (blocked on stdin until then).
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::stdin().lock().read(&mut buf) {
                if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = done.clone();
        let output = std::thread::spawn(move || {
            let mut from_pty = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            let mut out = std::io::stdout();
            loop {
                let mut fds = [libc::pollfd { fd: from_pty.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                // SAFETY: one valid pollfd for the duration of the call.
                let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 50) };
                if ready == 0 {
                    // Nothing pending: done once the process has ended (a
                    // background process may keep the pty open, as runc's
                    // relay, nexcage's ends with the process).
                    if ended.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    continue;
                }
                // EIO once the last holder of the pty's slave is gone.
                match from_pty.read(&mut buf) {
                    Ok(n) if n > 0 && out.write_all(&buf[..n]).and_then(|()| out.flush()).is_ok() => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        });
        Ok(Relay { output, done, saved, winch })
    }

    /// Once the process has ended: relays what the pty still holds, then
    /// restores the terminal.
    pub fn finish(self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.output.join();
        self.winch.close();
        if let Some(t) = self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, &t);
        }
    }
}

/// Gives the pty `master` the size of this process's terminal (stdin's).
fn resize(master: std::os::fd::RawFd) {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ fills the winsize it is given; TIOCSWINSZ reads
    // the one filled just before; both on fds this process holds.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, ws.as_mut_ptr()) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, ws.as_ptr());
        }
    }
}
