//! Bearer-token flow: an in-test token server and auth gate in front of a
//! real docker-registry. (docker-registry's own `token` auth needs a JWT
//! signing certificate; the gate speaks the same challenge protocol.)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    let mut h = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    let _ = s.write_all(h.as_bytes());
    let _ = s.write_all(body);
}

fn handle(mut s: TcpStream, port: u16, backend: String, need_creds: bool, count: Arc<AtomicUsize>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut auth = String::new();
    let mut accept = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
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
        assert!(path.contains("scope=repository%3Atest%2Fbusybox%3Apull"), "{path}");
        assert!(path.contains("service=gate"), "{path}");
        // "alice:s3cret"
        if need_creds && auth != "Basic YWxpY2U6czNjcmV0" {
            return respond(&mut s, "401 Unauthorized", &[], b"{}");
        }
        return respond(&mut s, "200 OK", &[("Content-Type".into(), "application/json".into())], format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes());
    }
    if auth != format!("Bearer {TOKEN}") {
        let ch = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="gate",scope="repository:test/busybox:pull""#);
        return respond(&mut s, "401 Unauthorized", &[("WWW-Authenticate".into(), ch)], b"{}");
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
    respond(&mut s, &format!("{} X", status.as_u16()), &hs, &body);
}

fn start_gate(backend: String, need_creds: bool) -> Gate {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (b, c) = (backend.clone(), c2.clone());
            std::thread::spawn(move || handle(s, port, b, need_creds, c));
        }
    });
    Gate { port, token_requests: count }
}

#[test]
fn bearer_token_anonymous_and_with_credentials() {
    if !have("bearer_token_anonymous_and_with_credentials", &["docker-registry", "skopeo", "busybox"]) {
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
    assert_eq!(pull(&store, &name, &insecure()).unwrap().manifest_digest, b.manifest_digest);
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
    o.client.credentials = Some(Credentials { username: "alice".into(), password: "s3cret".into() });
    assert_eq!(pull(&store2, &name, &o).unwrap().manifest_digest, b.manifest_digest);
}
