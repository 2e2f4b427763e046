//! A small blocking registry v2 client on ureq: ping, auth challenge,
//! manifests and blob streams, with retries on transient failures.

use std::sync::Mutex;
use std::time::Duration;

use tracing::{debug, info, warn};
use ureq::http::Response;
use ureq::Body;

use super::auth::{parse_challenge, Challenge, Credentials};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Verify TLS certificates. When false, https is tried without
    /// verification and plain http is used if the registry does not speak TLS.
    pub tls_verify: bool,
    pub credentials: Option<Credentials>,
    /// Attempts per request on transient errors (connection, 5xx, 429).
    pub attempts: u32,
    /// A `certs.d`-style directory (`<dir>/<host[:port]>/*.crt|*.cert|*.key`);
    /// default: /etc/containers/certs.d, /etc/docker/certs.d.
    pub cert_dir: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            credentials: None,
            attempts: 4,
            cert_dir: None,
        }
    }
}

pub struct RegistryClient {
    agent: ureq::Agent,
    base: String,
    registry: String,
    repository: String,
    creds: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    attempts: u32,
}

fn agent(opts: &ClientOptions, host: &str) -> ureq::Agent {
    let dir = opts.cert_dir.as_deref();
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(!opts.tls_verify)
        .root_certs(super::tls::root_certs(dir, host))
        .client_cert(super::tls::client_cert(dir, host))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .user_agent(concat!("nexcage/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections_per_host(16)
        .build()
        .new_agent()
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RegistryClient {
    /// Connect to the registry of `r` and find out how to talk to it.
    pub fn new(r: &Reference, opts: &ClientOptions) -> Result<Self> {
        let host = r.api_host().to_string();
        let mut c = RegistryClient {
            agent: agent(opts, &host),
            base: format!("https://{host}"),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            creds: opts.credentials.clone(),
            authorization: Mutex::new(None),
            attempts: opts.attempts.max(1),
        };
        match c.agent.get(format!("{}/v2/", c.base)).call() {
            Ok(resp) => debug!(
                status = resp.status().as_u16(),
                base = c.base,
                "registry ping"
            ),
            Err(e) if !opts.tls_verify => {
                // Only reached when the user asked for --tls-verify=false.
                info!(registry = host, error = %e, "https failed, falling back to plain http");
                c.base = format!("http://{host}");
            }
            Err(e) => {
                let hint = if r.is_local() {
                    " (a local registry without TLS needs --tls-verify=false)"
                } else {
                    ""
                };
                return Err(Error::Registry {
                    registry: host,
                    message: format!("{e}{hint}"),
                });
            }
        }
        Ok(c)
    }

    /// A client for `registry` (a host[:port], or `docker.io`) itself,
    /// not one repository: for [`RegistryClient::check_login`].
    pub fn for_registry(registry: &str, opts: &ClientOptions) -> Result<Self> {
        let mut r = Reference::parse(&format!("{registry}/login-check"))?;
        r.repository.clear();
        Self::new(&r, opts)
    }

    /// `GET /v2/` once, no credentials: the HTTP status (200 or 401 from a
    /// registry). Errors: the registry cannot be reached (connection, TLS).
    pub fn ping(&self) -> Result<u16> {
        Ok(self.agent.get(format!("{}/v2/", self.base)).call()?.status().as_u16())
    }

    /// `GET /v2/` answering the auth challenge with the credentials, as
    /// `podman login` checks them (distribution spec, "Determining
    /// support"): Ok when the registry accepts them (or needs none).
    /// Errors: [`Error::Unauthorized`] when it rejects them.
    pub fn check_login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        for authed in [false, true] {
            let mut req = self.agent.get(&url);
            if let Some(h) = self.lock_auth().clone() {
                req = req.header("Authorization", h);
            }
            let resp = req.call()?;
            match resp.status().as_u16() {
                200..=299 => return Ok(()),
                401 if !authed => self.authenticate(&resp)?,
                s @ (401 | 403) => {
                    return Err(Error::Unauthorized { registry: self.registry.clone(), message: format!("credentials rejected (HTTP {s})") })
                }
                s => return Err(self.err(format!("GET {url}: HTTP {s}"))),
            }
        }
        Err(self.err("the registry keeps asking for credentials"))
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// Answer a 401 challenge: basic credentials or a bearer token.
    fn authenticate(&self, resp: &Response<Body>) -> Result<()> {
        let header = resp
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let unauthorized = |m: String| Error::Unauthorized {
            registry: self.registry.clone(),
            message: m,
        };
        match parse_challenge(&header) {
            Some(Challenge::Basic) => {
                let c = self.creds.as_ref().ok_or_else(|| {
                    unauthorized("no credentials given (use --username/--password, --password-stdin or an auth file)".into())
                })?;
                *self.lock_auth() = Some(c.basic_header());
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                // No repository (a login check): a token without a scope.
                let scope = scope.or_else(|| (!self.repository.is_empty()).then(|| format!("repository:{}:pull", self.repository)));
                let mut query: Vec<String> = scope.iter().map(|s| format!("scope={}", urlencode(s))).collect();
                if let Some(s) = service {
                    query.push(format!("service={}", urlencode(&s)));
                }
                let mut url = realm.clone();
                if !query.is_empty() {
                    url.push(if realm.contains('?') { '&' } else { '?' });
                    url.push_str(&query.join("&"));
                }
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    req = req.header("Authorization", c.basic_header());
                }
                let mut tr = req.call()?;
                let status = tr.status().as_u16();
                if status == 401 || status == 403 {
                    let who = if self.creds.is_some() {
                        "credentials rejected"
                    } else {
                        "anonymous access denied"
                    };
                    return Err(unauthorized(format!(
                        "token server {realm}: {who} (HTTP {status})"
                    )));
                }
                if status != 200 {
                    return Err(self.err(format!("token server {realm}: HTTP {status}")));
                }
                let v: serde_json::Value = serde_json::from_slice(&tr.body_mut().read_to_vec()?)?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| self.err("token server answered without a token"))?;
                debug!("got bearer token");
                *self.lock_auth() = Some(format!("Bearer {token}"));
                Ok(())
            }
            None => Err(unauthorized(format!("unsupported challenge {header:?}"))),
        }
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // A poisoned lock only means another thread panicked mid-assignment
        // of an Option<String>; the value is still usable.
        self.authorization.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// GET with auth and retries. Returns a 2xx response or an error.
    pub fn get(&self, path: &str, accept: Option<&str>) -> Result<Response<Body>> {
        let url = format!("{}/v2/{}/{}", self.base, self.repository, path);
        let mut authed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(h) = self.lock_auth().clone() {
                req = req.header("Authorization", h);
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) if transient(&e) && attempt < self.attempts => {
                    warn!(url, error = %e, attempt, "transient error, retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = resp.status().as_u16();
            match status {
                200..=299 => return Ok(resp),
                401 if !authed => {
                    authed = true;
                    self.authenticate(&resp)?;
                }
                401 | 403 => {
                    return Err(Error::Unauthorized {
                        registry: self.registry.clone(),
                        message: format!(
                            "HTTP {status} for {path}{}",
                            if self.creds.is_none() {
                                " (no credentials given)"
                            } else {
                                ""
                            }
                        ),
                    })
                }
                404 => return Err(self.err(format!("{}/{path}: not found", self.repository))),
                429 | 500..=599 if attempt < self.attempts => {
                    warn!(url, status, attempt, "server error, retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                _ => return Err(self.err(format!("GET {url}: HTTP {status}"))),
            }
        }
    }

    /// Fetch a manifest or index; returns raw bytes, media type and digest.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let mut resp = self.get(&format!("manifests/{reference}"), Some(MANIFEST_ACCEPT))?;
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let data = resp.body_mut().with_config().limit(8 << 20).read_to_vec()?;
        let digest = Digest::of_bytes(&data);
        if let Ok(want) = Digest::parse(reference) {
            if want != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {reference}"),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        // Prefer the document's own mediaType; fall back to the header.
        let v: serde_json::Value = serde_json::from_slice(&data)?;
        let mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or(ct)
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
        Ok((data, mt, digest))
    }

    /// Start downloading a blob; the caller streams and verifies the body.
    pub fn blob(&self, d: &Digest) -> Result<Response<Body>> {
        self.get(&format!("blobs/{d}"), None)
    }
}
