//! The HTTPS API server: self-signed certificate (fingerprint written to
//! `DIR/fingerprint`), token and ticket auth, thread per connection,
//! HTTP/1.1 keep-alive as pveproxy does it (see [`KeepAlive`]).

use crate::ops::{self, ApiError, Ctx};
use crate::state::{write_atomic, State};
use nexcage_pve::schema::{Params, Schema};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct ServeOpts {
    pub state: PathBuf,
    pub listen: String,
    pub schema: PathBuf,
    pub node: String,
    /// (`user@realm!id`, secret)
    pub tokens: Vec<(String, String)>,
    /// (`user@realm`, password)
    pub users: Vec<(String, String)>,
    /// `--lxc-path`: written to `DIR/lxc-path` for every personality.
    pub lxc_path: Option<PathBuf>,
    /// `--real-start`: `DIR/real-start` exists.
    pub real_start: bool,
    /// `--pve-version`: written to `DIR/version` (pve-manager version).
    pub pve_version: Option<String>,
}

struct Shared {
    state: State,
    schema: Schema,
    tokens: Vec<(String, String)>,
    users: Vec<(String, String)>,
    /// ticket -> (user, csrf token)
    tickets: Mutex<HashMap<String, (String, String)>>,
}

pub fn serve(o: ServeOpts) -> Result<(), String> {
    let schema = Schema::load(&o.schema).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&o.state).map_err(|e| e.to_string())?;
    write_atomic(&o.state.join("node"), o.node.as_bytes()).map_err(|e| e.to_string())?;
    if let Some(p) = &o.lxc_path {
        write_atomic(
            &o.state.join("lxc-path"),
            p.display().to_string().as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    }
    if o.real_start {
        write_atomic(&o.state.join("real-start"), b"").map_err(|e| e.to_string())?;
    }
    if let Some(v) = &o.pve_version {
        write_atomic(&o.state.join("version"), v.as_bytes()).map_err(|e| e.to_string())?;
    }
    let state = State::open(&o.state, Some(&o.node)).map_err(|e| e.to_string())?;

    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| e.to_string())?;
    let der: CertificateDer<'static> = ck.cert.der().clone();
    let fp: Vec<String> = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    write_atomic(&o.state.join("fingerprint"), fp.join(":").as_bytes())
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .map_err(|e| e.to_string())?;
    let config = Arc::new(config);

    let listener = TcpListener::bind(&o.listen).map_err(|e| format!("listen {}: {e}", o.listen))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    write_atomic(&o.state.join("port"), port.to_string().as_bytes()).map_err(|e| e.to_string())?;
    tracing::info!(port, "pve-double listening");

    let shared = Arc::new(Shared {
        state,
        schema,
        tokens: o.tokens,
        users: o.users,
        tickets: Mutex::new(HashMap::new()),
    });
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let (shared, config) = (shared.clone(), config.clone());
        std::thread::spawn(move || {
            if let Err(e) = connection(&shared, config, tcp) {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    Ok(())
}

struct Request {
    method: String,
    path: String,
    query: String,
    /// `HTTP/1.1` as in the request line.
    proto: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// pveproxy's keep-alive (pve-http-server src/PVE/APIServer/AnyEvent.pm
/// `accept_connections`, `push_request_header`, `authenticate_and_handle_request`,
/// `response`, `finish_response`; pve-manager PVE/Service/pveproxy.pm
/// `keep_alive => 100`): a connection serves up to 100 requests (a counter
/// set to 100 at accept, decremented by every request line, kept open while
/// above 0); it is closed after a response with status >= 400, after a
/// request saying `Connection: close`, after an HTTP/1.0 request without a
/// `Connection` header, after a multipart upload, and when idle for 5 s
/// (AnyEvent.pm's default `timeout`, which pveproxy does not change). Kept
/// open: `Connection: Keep-Alive`; else `Connection: close`.
struct KeepAlive {
    left: u32,
}

impl KeepAlive {
    const REQUESTS: u32 = 100;
    const IDLE: Duration = Duration::from_secs(5);

    /// Whether the connection stays open after answering `req` with `status`.
    fn after(&mut self, req: &Request, status: u16) -> bool {
        self.left = self.left.saturating_sub(1);
        let conn = req.headers.get("connection").map(|c| c.to_ascii_lowercase());
        let closes = match &conn {
            Some(c) => c.contains("close"),
            None => req.proto != "HTTP/1.1",
        };
        let upload = req
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("multipart/form-data"));
        self.left > 0 && status < 400 && !closes && !upload
    }
}

/// Reads one request from `s`; `buf` carries bytes read past it (the next
/// request on a kept-alive connection). `Ok(None)`: the peer closed (or
/// went idle) between requests.
fn read_request<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> Result<Option<Request>, String> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 1 << 20 {
            return Err("header too large".into());
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            return if buf.is_empty() { Ok(None) } else { Err("eof".into()) };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap_or("").split(' ');
    let method = rl.next().unwrap_or("").to_string();
    let target = rl.next().unwrap_or("").to_string();
    let proto = rl.next().unwrap_or("HTTP/1.0").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end + 4);
    while buf.len() < len {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("eof in body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    let (path, query) = target
        .split_once('?')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or((target, String::new()));
    Ok(Some(Request {
        method,
        path,
        query,
        proto,
        headers,
        body,
    }))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond<S: Write>(
    s: &mut S,
    status: u16,
    reason: &str,
    body: &str,
    keep: bool,
) -> std::io::Result<()> {
    // The reason phrase is the message's first line, as pveproxy does.
    let reason: String = reason
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let connection = if keep { "Keep-Alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    // One write, as pveproxy's single `push_write` (AnyEvent.pm `response`):
    // a body sent apart from its head waits for the client's delayed ACK
    // (Nagle) once the connection is kept alive, ~40 ms per call.
    s.write_all([head.as_bytes(), body.as_bytes()].concat().as_slice())?;
    s.flush()
}

fn connection(shared: &Shared, config: Arc<ServerConfig>, tcp: TcpStream) -> Result<(), String> {
    tcp.set_read_timeout(Some(KeepAlive::IDLE))
        .map_err(|e| e.to_string())?;
    let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    let mut ka = KeepAlive {
        left: KeepAlive::REQUESTS,
    };
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut tls, &mut buf)? {
        let (status, reason, body) = handle(shared, &req);
        let keep = ka.after(&req, status);
        respond(&mut tls, status, &reason, &body, keep).map_err(|e| e.to_string())?;
        if !keep {
            break;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn params_of(req: &Request) -> Params {
    let mut p = Params::new();
    for (k, v) in form_urlencoded::parse(req.query.as_bytes()) {
        p.insert(k.into_owned(), v.into_owned());
    }
    if req.method == "POST" || req.method == "PUT" {
        let json = req
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json"));
        let boundary = req
            .headers
            .get("content-type")
            .and_then(|c| c.strip_prefix("multipart/form-data"))
            .and_then(|c| c.split("boundary=").nth(1))
            .map(|b| b.trim_matches('"').to_string());
        if let Some(b) = boundary {
            multipart(&req.body, &b, &mut p);
        } else if json {
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&req.body) {
                for (k, v) in o {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Bool(b) => {
                            if b {
                                "1".into()
                            } else {
                                "0".into()
                            }
                        }
                        other => other.to_string(),
                    };
                    p.insert(k, s);
                }
            }
        } else {
            for (k, v) in form_urlencoded::parse(&req.body) {
                p.insert(k.into_owned(), v.into_owned());
            }
        }
    }
    p
}

/// A `multipart/form-data` body as pve-http-server's upload handler reads
/// it (pve-http-server AnyEvent.pm `file_upload_multipart`): plain parts
/// become parameters; the file part is written to
/// `/var/tmp/pveupload-<hex>`, named by `tmpfilename`, and its file name
/// becomes `filename` (PROXMOX-FACTS §4: upload of the empty template).
fn multipart(body: &[u8], boundary: &str, p: &mut Params) {
    let delim = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut at = match find(body, delim.as_bytes(), 0) {
        Some(i) => i + delim.len(),
        None => return,
    };
    while let Some(head_end) = find(body, b"\r\n\r\n", at) {
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let start = head_end + 4;
        let Some(next) = find(body, format!("\r\n{delim}").as_bytes(), start) else {
            break;
        };
        let data = &body[start..next];
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        let attr = |name: &str| {
            disposition
                .split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        if let Some(name) = attr("name") {
            match attr("filename") {
                Some(file) => {
                    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let tmp = format!("/var/tmp/pveupload-{:x}{n:x}", std::process::id());
                    if std::fs::write(&tmp, data).is_ok() {
                        p.insert("tmpfilename".into(), tmp);
                        p.insert(name, file);
                    }
                }
                None => {
                    p.insert(name, String::from_utf8_lossy(data).into_owned());
                }
            }
        }
        at = next + 2 + delim.len();
    }
}

/// (status, reason, body)
fn handle(shared: &Shared, req: &Request) -> (u16, String, String) {
    let Some(api_path) = req.path.strip_prefix("/api2/json") else {
        return (
            501,
            "Not Implemented".into(),
            json!({"data": null}).to_string(),
        );
    };
    let path = api_path
        .split('/')
        .map(percent_decode)
        .collect::<Vec<_>>()
        .join("/");
    let params = params_of(req);
    tracing::debug!(method = %req.method, %path, "request");
    if req.method == "POST" && path == "/access/ticket" {
        return ticket(shared, &params);
    }
    let Some(user) = authenticate(shared, req) else {
        return (401, "authentication failure".into(), String::new());
    };
    let ctx = Ctx {
        state: &shared.state,
        schema: &shared.schema,
        user,
    };
    match ops::dispatch(&ctx, &req.method, &path, params) {
        Ok(data) => (200, "OK".into(), json!({"data": data}).to_string()),
        Err(e) => error_response(e),
    }
}

fn error_response(e: ApiError) -> (u16, String, String) {
    let mut body = json!({"data": null, "message": format!("{}\n", e.message)});
    if !e.errors.is_empty() {
        body["errors"] = json!(e.errors);
    }
    (e.status, e.message, body.to_string())
}

fn ticket(shared: &Shared, params: &Params) -> (u16, String, String) {
    if let Err(v) = shared.schema.validate("POST", "/access/ticket", params) {
        shared
            .state
            .record_violation("POST /access/ticket", &v.to_string());
        return error_response(ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors: v.0,
        });
    }
    let mut user = params.get("username").cloned().unwrap_or_default();
    if let (false, Some(realm)) = (user.contains('@'), params.get("realm")) {
        user = format!("{user}@{realm}");
    }
    let pw = params.get("password").cloned().unwrap_or_default();
    if !shared.users.iter().any(|(u, p)| *u == user && *p == pw) {
        return (401, "authentication failure".into(), String::new());
    }
    let n = crate::state::now_ms();
    let ticket = format!(
        "PVE:{user}:{:08X}::{:x}",
        crate::state::now(),
        Sha256::digest(format!("{user}{n}").as_bytes())
            .iter()
            .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)))
    );
    let csrf = format!("{:08X}:{:x}", crate::state::now(), n);
    if let Ok(mut t) = shared.tickets.lock() {
        t.insert(ticket.clone(), (user.clone(), csrf.clone()));
    }
    let data = json!({"ticket": ticket, "CSRFPreventionToken": csrf, "username": user});
    (200, "OK".into(), json!({"data": data}).to_string())
}

/// The authenticated user id, or None (401).
fn authenticate(shared: &Shared, req: &Request) -> Option<String> {
    if let Some(a) = req.headers.get("authorization") {
        let rest = a.strip_prefix("PVEAPIToken")?;
        let rest = rest.strip_prefix('=').or_else(|| rest.strip_prefix(' '))?;
        let (id, secret) = rest.split_once('=')?;
        return shared
            .tokens
            .iter()
            .any(|(i, s)| i == id && s == secret)
            .then(|| id.to_string());
    }
    let cookie = req.headers.get("cookie")?;
    let ticket = cookie
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix("PVEAuthCookie="))?;
    let ticket = percent_decode(ticket);
    let tickets = shared.tickets.lock().ok()?;
    let (user, csrf) = tickets.get(&ticket)?;
    if req.method != "GET" && req.headers.get("csrfpreventiontoken") != Some(csrf) {
        return None;
    }
    Some(user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_back_to_back_on_one_connection() {
        let wire = b"PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nx=1GET /b?c=d HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut s = &wire[..];
        let mut buf = Vec::new();
        let a = read_request(&mut s, &mut buf).unwrap().unwrap();
        assert_eq!((a.method.as_str(), a.path.as_str(), a.body.as_slice()), ("PUT", "/a", &b"x=1"[..]));
        let b = read_request(&mut s, &mut buf).unwrap().unwrap();
        assert_eq!((b.method.as_str(), b.path.as_str(), b.query.as_str(), b.proto.as_str()), ("GET", "/b", "c=d", "HTTP/1.1"));
        assert!(read_request(&mut s, &mut buf).unwrap().is_none(), "a clean end between requests");
    }

    #[test]
    fn keep_alive_as_pveproxy() {
        let req = |head: &str| {
            let wire = format!("{head}\r\n\r\n");
            read_request(&mut wire.as_bytes(), &mut Vec::new()).unwrap().unwrap()
        };
        let fresh = || KeepAlive { left: KeepAlive::REQUESTS };
        assert!(fresh().after(&req("GET / HTTP/1.1"), 200));
        assert!(!fresh().after(&req("GET / HTTP/1.1"), 401), "an error status closes");
        assert!(!fresh().after(&req("GET / HTTP/1.1\r\nConnection: close"), 200));
        assert!(!fresh().after(&req("GET / HTTP/1.0"), 200), "HTTP/1.0 without Connection closes");
        assert!(fresh().after(&req("GET / HTTP/1.0\r\nConnection: Keep-Alive"), 200));
        assert!(!fresh().after(&req("POST /u HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x"), 200), "an upload closes");
        let mut ka = fresh();
        let n = (1..=KeepAlive::REQUESTS).take_while(|_| ka.after(&req("GET / HTTP/1.1"), 200)).count();
        assert_eq!(n + 1, KeepAlive::REQUESTS as usize, "the 100th request is the last");
    }
}
