//! Which certificates a registry connection trusts and presents, the way
//! podman and skopeo decide: the host's CA bundle (Mozilla's roots only when
//! the host has none), plus per-registry files in a `certs.d/<host[:port]>/`
//! directory: `*.crt` are extra CAs, `*.cert` + `*.key` a client certificate.
//! A host without a bundle and a registry without `*.crt` get Mozilla's roots.

use std::path::{Path, PathBuf};

use tracing::{debug, warn};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts};

/// CA bundles of the common distributions, tried in order after `SSL_CERT_FILE`.
const BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `certs.d` roots searched when no `--cert-dir` is given.
const CERT_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

fn certs_in(data: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(data)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

fn read_certs(p: &Path) -> Vec<Certificate<'static>> {
    match std::fs::read(p) {
        Ok(d) => certs_in(&d),
        Err(e) => {
            warn!(path = %p.display(), "cannot read certificates: {e}");
            Vec::new()
        }
    }
}

/// The per-registry directory: `<dir>/<host[:port]>` for `--cert-dir DIR`,
/// else the first of the containers/docker ones that exists.
fn registry_dir(cert_dir: Option<&Path>, host: &str) -> Option<PathBuf> {
    match cert_dir {
        Some(d) => Some(d.join(host)),
        None => CERT_DIRS.iter().map(|r| Path::new(r).join(host)).find(|d| d.is_dir()),
    }
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Trust anchors for `host` (`host[:port]` as in the reference).
pub fn root_certs(cert_dir: Option<&Path>, host: &str) -> RootCerts {
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    let mut certs = bundle.as_deref().map(read_certs).unwrap_or_default();
    let extra: Vec<Certificate<'static>> = registry_dir(cert_dir, host)
        .map(|d| files_with(&d, "crt").iter().flat_map(|f| read_certs(f)).collect())
        .unwrap_or_default();
    debug!(bundle = ?bundle, system = certs.len(), registry = extra.len(), "trust anchors");
    if certs.is_empty() && extra.is_empty() {
        return RootCerts::WebPki;
    }
    // Without a host bundle the registry's own CAs are the only anchors.
    certs.extend(extra);
    RootCerts::new_with_certs(&certs)
}

/// A client certificate for `host`: the first `*.cert` with its `*.key`.
pub fn client_cert(cert_dir: Option<&Path>, host: &str) -> Option<ClientCert> {
    let dir = registry_dir(cert_dir, host)?;
    let cert = files_with(&dir, "cert").into_iter().next()?;
    let key = cert.with_extension("key");
    let certs = read_certs(&cert);
    let key = std::fs::read(&key).ok().and_then(|k| PrivateKey::from_pem(&k).ok());
    match key {
        Some(k) if !certs.is_empty() => Some(ClientCert::new_with_certs(&certs, k)),
        _ => {
            warn!(cert = %cert.display(), "client certificate without a readable key next to it: not used");
            None
        }
    }
}
