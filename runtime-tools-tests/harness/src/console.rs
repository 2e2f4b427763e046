//! The receiving end of `--console-socket`: accept one connection, receive one
//! message whose SCM_RIGHTS carries the pty master (as conmon and the
//! containerd shim do).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Received {
    pub master: OwnedFd,
    /// the message's data (runc sends the pty name)
    pub name: String,
    /// number of fds that came with the message
    pub nfds: usize,
}

/// Binds the socket now; `accept` runs on a thread so that `create` can proceed.
pub fn listen(path: &Path) -> Result<UnixListener> {
    let l = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub fn receive(l: UnixListener, timeout: Duration) -> Result<Received> {
    let start = Instant::now();
    let stream = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > timeout {
                    bail!("nobody connected to the console socket within {timeout:?}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("accept on console socket"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    let fd = stream.as_raw_fd();
    let mut data = [0u8; 4096];
    // room for up to 8 fds, so that we can tell if more than one was sent
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: msghdr is plain data; zeroed is a valid initial value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at live buffers (data, cbuf, iov) sized as declared.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error()).context("recvmsg on console socket");
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: CMSG_* walk the control buffer the kernel just filled, bounded
    // by msg_controllen; each SCM_RIGHTS payload is an array of ints that are
    // new descriptors owned by us (hence from_raw_fd).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const libc::c_int;
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let nfds = fds.len();
    let name = String::from_utf8_lossy(&data[..n as usize]).trim_end_matches('\0').to_string();
    let Some(master) = fds.into_iter().next() else {
        bail!("console socket message carried no fd (data {name:?})");
    };
    Ok(Received { master, name, nfds })
}

/// Reads the pty master until the slave side is closed (EIO) or `timeout`.
pub fn drain(master: OwnedFd, timeout: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(out);
    });
    match rx.recv_timeout(timeout) {
        Ok(v) => String::from_utf8_lossy(&v).replace("\r\n", "\n"),
        Err(_) => String::from("<pty read timed out>"),
    }
}
