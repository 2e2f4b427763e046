//! The API driver's TCP transport and resolver, under the TLS connector
//! (`tls.rs`).
//!
//! The transport is ureq's plain TCP plus `TCP_QUICKACK` before each read.
//! pveproxy sets no `TCP_NODELAY` on its connections (pve-http-server
//! `src/PVE/APIServer/AnyEvent.pm` `accept_connections`: an
//! `AnyEvent::Handle` without `no_delay`), and a TLS 1.3 server sends its
//! session tickets in a write of their own after the handshake: the
//! response to the first request then waits (Nagle) for the client's ACK of
//! the tickets, which Linux's delayed ACK holds back up to 40 ms. Measured
//! against the pve-double (rustls, no `TCP_NODELAY` either): 7-19 of 30
//! first requests on a new connection took 40-48 ms instead of 0.3 ms;
//! with `TCP_QUICKACK` set before reading, none of 60. nexcage opens one
//! connection per command, so every command paid it that often.
//!
//! The resolver answers an IP-literal host itself: ureq's default resolver
//! starts a thread per request to bound the lookup's time, even for
//! `127.0.0.1`.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport};

/// Connects the TCP socket ([`QuickAckTcp`]) the TLS connector runs on.
#[derive(Debug, Default)]
pub(crate) struct QuickAckConnector;

impl<In: Transport> Connector<In> for QuickAckConnector {
    type Out = Either<In, QuickAckTcp>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(c) = chained {
            return Ok(Some(Either::A(c)));
        }
        let timeout = details.timeout.not_zero().map(|d| *d);
        let mut last = None;
        for addr in details.addrs.iter() {
            let r = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match r {
                Ok(stream) => {
                    stream.set_nodelay(details.config.no_delay())?;
                    let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
                    return Ok(Some(Either::B(QuickAckTcp { stream, buffers })));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => ureq::Error::Timeout(ureq::Timeout::Connect),
            Some(e) => e.into(),
            None => ureq::Error::HostNotFound,
        })
    }
}

/// A TCP connection that acknowledges what it receives at once.
pub(crate) struct QuickAckTcp {
    stream: TcpStream,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for QuickAckTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickAckTcp").field("peer", &self.stream.peer_addr().ok()).finish()
    }
}

/// `setsockopt(TCP_QUICKACK, 1)`: sends a pending delayed ACK now and ACKs
/// the next segments at once (Linux leaves quickack mode by itself, hence
/// before every read; tcp(7)). Best effort.
fn quickack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to an int that outlives the call.
    unsafe {
        libc::setsockopt(stream.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_QUICKACK, (&one as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t);
    }
}

fn io_error(e: std::io::Error, timeout: &NextTimeout) -> ureq::Error {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ureq::Error::Timeout(timeout.reason),
        _ => e.into(),
    }
}

impl Transport for QuickAckTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(timeout.not_zero().map(|d| *d))?;
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(|e| io_error(e, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(timeout.not_zero().map(|d| *d))?;
        quickack(&self.stream);
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| io_error(e, &timeout))?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open when nothing is waiting to be read (a pooled connection the
    /// server closed reads EOF; one with unasked-for bytes is not reused).
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut buf = [0u8; 1];
        let open = matches!(self.stream.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && open
    }
}

/// ureq's resolver, but an IP-literal host is its own address (no thread).
#[derive(Debug, Default)]
pub(crate) struct LiteralResolver(DefaultResolver);

impl Resolver for LiteralResolver {
    fn resolve(&self, uri: &ureq::http::Uri, config: &ureq::config::Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        if let (Some(ip), Some(port)) = (host.and_then(|h| h.parse::<IpAddr>().ok()), uri.port_u16()) {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        self.0.resolve(uri, config, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_literal_resolves_to_itself() {
        let r = LiteralResolver::default();
        let cfg = ureq::config::Config::default();
        for (url, want) in [("https://127.0.0.1:8006/api2/json", "127.0.0.1:8006"), ("https://[::1]:8006/x", "[::1]:8006")] {
            let uri: ureq::http::Uri = url.parse().unwrap();
            let got = r.resolve(&uri, &cfg, NextTimeout::default()).unwrap();
            assert_eq!(got.iter().map(|a| a.to_string()).collect::<Vec<_>>(), [want]);
        }
    }
}
