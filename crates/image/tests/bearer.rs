//! Bearer-token flow: an in-test token server and auth gate in front of a
//! real docker-registry. (docker-registry's own `token` auth needs a JWT
//! signing certificate; the gate speaks the same challenge protocol.)

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use nexcage_image::pull::pull;
use nexcage_image::registry::Credentials;
use nexcage_image::{Error, Store};

const TOKEN: &str = "tok-7f3a";

struct Gate {
    port: u16,
    token_requests: Arc<AtomicUsize>,
}

fn respond(s: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut h = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    let _ = s.write_all(h.as_bytes());
    let _ = s.write_all(body);
}

#[derive(Clone)]
struct Mode {
    need_creds: bool,
    /// Blob requests: first answered 503, second cut off half way.
    flaky: bool,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

fn handle(mut s: TcpStream, port: u16, backend: String, mode: Mode, count: Arc<AtomicUsize>) {
    let need_creds = mode.need_creds;
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return; // e.g. a TLS hello from the https probe
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut auth = String::new();
    let mut accept = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() {
            return;
        }
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "authorization" => auth = v.trim().to_string(),
                "accept" => accept = v.trim().to_string(),
                _ => {}
            }
        }
    }
    if path.starts_with("/token") {
        count.fetch_add(1, Ordering::SeqCst);
        assert!(
            path.contains("scope=repository%3Atest%2Fbusybox%3Apull"),
            "{path}"
        );
        assert!(path.contains("service=gate"), "{path}");
        // "alice:s3cret"
        if need_creds && auth != "Basic YWxpY2U6czNjcmV0" {
            return respond(&mut s, "401 Unauthorized", &[], b"{}");
        }
        return respond(
            &mut s,
            "200 OK",
            &[("Content-Type".into(), "application/json".into())],
            format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
        );
    }
    if auth != format!("Bearer {TOKEN}") {
        let ch = format!(
            r#"Bearer realm="http://127.0.0.1:{port}/token",service="gate",scope="repository:test/busybox:pull""#
        );
        return respond(
            &mut s,
            "401 Unauthorized",
            &[("WWW-Authenticate".into(), ch)],
            b"{}",
        );
    }
    let mut nth = 0;
    if mode.flaky && path.contains("/blobs/") {
        let mut seen = mode.seen.lock().unwrap();
        let c = seen.entry(path.clone()).or_insert(0);
        nth = *c;
        *c += 1;
        if nth == 0 {
            return respond(&mut s, "503 Service Unavailable", &[], b"busy");
        }
    }
    let mut req = ureq::get(format!("{backend}{path}"));
    if !accept.is_empty() {
        req = req.header("Accept", &accept);
    }
    let mut resp = match req.config().http_status_as_error(false).build().call() {
        Ok(r) => r,
        Err(_) => return respond(&mut s, "502 Bad Gateway", &[], b""),
    };
    let mut hs = Vec::new();
    for k in ["content-type", "docker-content-digest"] {
        if let Some(v) = resp.headers().get(k) {
            hs.push((k.to_string(), v.to_str().unwrap().to_string()));
        }
    }
    let status = resp.status();
    let mut body = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut body).unwrap();
    if nth == 1 {
        // Promise the whole body, send half, hang up.
        let h = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(h.as_bytes());
        let _ = s.write_all(&body[..body.len() / 2]);
        return;
    }
    respond(&mut s, &format!("{} X", status.as_u16()), &hs, &body);
}

fn start_gate(backend: String, need_creds: bool) -> Gate {
    start_gate_mode(
        backend,
        Mode {
            need_creds,
            flaky: false,
            seen: Default::default(),
        },
    )
}

fn start_gate_mode(backend: String, mode: Mode) -> Gate {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (b, c, m) = (backend.clone(), c2.clone(), mode.clone());
            std::thread::spawn(move || handle(s, port, b, m, c));
        }
    });
    Gate {
        port,
        token_requests: count,
    }
}

#[test]
fn bearer_token_anonymous_and_with_credentials() {
    if !have(
        "bearer_token_anonymous_and_with_credentials",
        &["docker-registry", "skopeo", "busybox"],
    ) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(&[busybox_layer()], "amd64", serde_json::json!({}), true);
    l.tag(&b, "v1");
    reg.push(src.path(), "v1", "test/busybox", false, None);

    // Anonymous tokens.
    let open = start_gate(format!("http://{}", reg.host()), false);
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("127.0.0.1:{}/test/busybox:v1", open.port);
    assert_eq!(
        pull(&store, &name, &insecure()).unwrap().manifest_digest,
        b.manifest_digest
    );
    assert!(open.token_requests.load(Ordering::SeqCst) >= 1);

    // Token server wants credentials.
    let closed = start_gate(format!("http://{}", reg.host()), true);
    let name = format!("127.0.0.1:{}/test/busybox:v1", closed.port);
    let sd2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(sd2.path()).unwrap();
    let e = pull(&store2, &name, &insecure()).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("anonymous access denied"), "{e}");
    let mut o = insecure();
    o.client.credentials = Some(Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    assert_eq!(
        pull(&store2, &name, &o).unwrap().manifest_digest,
        b.manifest_digest
    );
}

#[test]
fn transient_failures_are_retried() {
    if !have(
        "transient_failures_are_retried",
        &["docker-registry", "skopeo", "busybox"],
    ) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(
        &[
            busybox_layer(),
            tar_layer(&[E::File("x", 0o644, &[1u8; 100_000])]),
        ],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "v1");
    reg.push(src.path(), "v1", "test/busybox", false, None);
    let gate = start_gate_mode(
        format!("http://{}", reg.host()),
        Mode {
            need_creds: false,
            flaky: true,
            seen: Default::default(),
        },
    );
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("127.0.0.1:{}/test/busybox:v1", gate.port);
    assert_eq!(
        pull(&store, &name, &insecure()).unwrap().manifest_digest,
        b.manifest_digest
    );
    assert_eq!(std::fs::read_dir(sd.path().join("tmp")).unwrap().count(), 0);

    // With a single attempt the same faults are reported, and nothing is stored.
    let gate = start_gate_mode(
        format!("http://{}", reg.host()),
        Mode {
            need_creds: false,
            flaky: true,
            seen: Default::default(),
        },
    );
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let mut o = insecure();
    o.client.attempts = 1;
    let e = pull(
        &store,
        &format!("127.0.0.1:{}/test/busybox:v1", gate.port),
        &o,
    )
    .unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    assert!(store.images().unwrap().is_empty());
}
