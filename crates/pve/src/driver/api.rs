//! The REST API driver: `https://host:8006/api2/json`, API token or
//! ticket auth, certificate pinning, form-encoded bodies, UPID polling.

use super::tls::{client_config, PinnedTlsConnector};
use super::{
    vmid_of, volids, CallCounter, ControlPlane, CreateRequest, GuestConfig, GuestStatus,
    GuestSummary, NewVolume, PveError, PveVersion,
};
use nexcage_config::Secret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use super::tcp::{LiteralResolver, QuickAckConnector};
use ureq::unversioned::transport::Connector;

/// How the driver authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `USER@REALM!TOKENID` and its secret.
    Token { id: String, secret: Secret },
    /// A user and password, exchanged for a ticket via POST /access/ticket.
    Password { username: String, password: Secret },
}

#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub host: String,
    pub port: u16,
    pub node: String,
    pub auth: Auth,
    /// SHA-256 of the node's certificate; `None` = verify with system CAs.
    pub fingerprint: Option<[u8; 32]>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Upper bound for waiting on a task.
    pub task_timeout: Duration,
}

impl ApiOptions {
    pub fn new(host: &str, port: u16, node: &str, auth: Auth) -> Self {
        ApiOptions {
            host: host.into(),
            port,
            node: node.into(),
            auth,
            fingerprint: None,
            timeout: Duration::from_secs(30),
            task_timeout: Duration::from_secs(600),
        }
    }
}

struct Ticket {
    ticket: Secret,
    csrf: Secret,
    obtained: Instant,
}

/// How long a pooled connection may sit idle and still be reused: under
/// pveproxy's 5 s idle timeout.
const POOL_IDLE: Duration = Duration::from_secs(4);
/// Size of the input and output buffers of an API connection, bytes.
const IO_BUFFER: usize = 16 * 1024;

/// Tickets live 2 h; renew well before.
const TICKET_RENEW_AFTER: Duration = Duration::from_secs(90 * 60);

pub struct ApiDriver {
    opts: ApiOptions,
    agent: ureq::Agent,
    ticket: Mutex<Option<Ticket>>,
    calls: CallCounter,
}

impl std::fmt::Debug for ApiDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiDriver")
            .field("host", &self.opts.host)
            .field("node", &self.opts.node)
            .finish()
    }
}

/// Percent-encode one path segment (UPIDs contain `:` `@` `!`).
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn encode(params: &BTreeMap<String, String>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl ApiDriver {
    pub fn new(opts: ApiOptions) -> Result<ApiDriver, PveError> {
        let tls = client_config(opts.fingerprint).map_err(|msg| PveError::Tls {
            call: format!("connect {}:{}", opts.host, opts.port),
            msg,
        })?;
        // The agent's pool keeps one connection for a command's calls;
        // pveproxy closes one idle for 5 s (pve-http-server AnyEvent.pm
        // `timeout`), so one idle for 4 s is not reused: a request never
        // races the server's close.
        // Buffers of 16 KiB, not ureq's 128 KiB: each is zero-filled when
        // a connection opens (~0.3 ms of page faults per command), and the
        // API's headers and requests are a few hundred bytes (bodies and
        // larger answers stream through them).
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(opts.timeout))
            .max_idle_age(POOL_IDLE)
            .input_buffer_size(IO_BUFFER)
            .output_buffer_size(IO_BUFFER)
            // A head larger than the buffer fails as too large, not as a
            // connection that stopped.
            .max_response_header_size(IO_BUFFER)
            .build();
        // TCP with quick ACKs (`tcp.rs`: no 40 ms stall on a connection's first response).
        let connector = ().chain(QuickAckConnector).chain(PinnedTlsConnector { config: tls });
        let agent = ureq::Agent::with_parts(config, connector, LiteralResolver::default());
        Ok(ApiDriver {
            opts,
            agent,
            ticket: Mutex::new(None),
            calls: CallCounter::default(),
        })
    }

    fn url(&self, path: &str) -> String {
        let host = if self.opts.host.contains(':') {
            format!("[{}]", self.opts.host)
        } else {
            self.opts.host.clone()
        };
        format!("https://{host}:{}/api2/json{path}", self.opts.port)
    }

    /// Auth headers for a request; obtains/renews the ticket if needed.
    fn auth_headers(&self, method: &str) -> Result<Vec<(String, String)>, PveError> {
        match &self.opts.auth {
            Auth::Token { id, secret } => Ok(vec![(
                "Authorization".into(),
                format!("PVEAPIToken={id}={}", secret.expose()),
            )]),
            Auth::Password { username, password } => {
                let mut guard = self.ticket.lock().map_err(|_| PveError::Transport {
                    call: "POST /access/ticket".into(),
                    msg: "ticket lock poisoned".into(),
                })?;
                let fresh = guard
                    .as_ref()
                    .is_some_and(|t| t.obtained.elapsed() < TICKET_RENEW_AFTER);
                if !fresh {
                    *guard = Some(self.login(username, password)?);
                }
                let t = guard.as_ref().ok_or_else(|| PveError::Transport {
                    call: "POST /access/ticket".into(),
                    msg: "no ticket".into(),
                })?;
                let mut h = vec![(
                    "Cookie".into(),
                    format!("PVEAuthCookie={}", t.ticket.expose()),
                )];
                if method != "GET" {
                    h.push(("CSRFPreventionToken".into(), t.csrf.expose().to_string()));
                }
                Ok(h)
            }
        }
    }

    fn login(&self, username: &str, password: &Secret) -> Result<Ticket, PveError> {
        let params = p(&[("username", username), ("password", password.expose())]);
        let data = self.send("POST", "/access/ticket", &params, &[])?;
        let get = |k: &str| data.get(k).and_then(Value::as_str).map(Secret::new);
        match (get("ticket"), get("CSRFPreventionToken")) {
            (Some(ticket), Some(csrf)) => Ok(Ticket {
                ticket,
                csrf,
                obtained: Instant::now(),
            }),
            _ => Err(PveError::Parse {
                call: "POST /access/ticket".into(),
                msg: "no ticket in answer".into(),
            }),
        }
    }

    /// One authenticated call; GETs are retried on transport errors and 5xx
    /// other than 500 (which is a real answer from Proxmox).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, PveError> {
        let attempts: u32 = if method == "GET" { 3 } else { 1 };
        let mut last = None;
        for i in 0..attempts {
            let headers = self.auth_headers(method)?;
            match self.send(method, path, params, &headers) {
                Err(
                    e @ (PveError::Transport { .. }
                    | PveError::Api {
                        status: 502..=504, ..
                    }),
                ) if i + 1 < attempts => {
                    tracing::debug!(error = %e, "retrying GET");
                    std::thread::sleep(Duration::from_millis(200 * (u64::from(i) + 1)));
                    last = Some(e);
                }
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| PveError::Transport {
            call: format!("{method} {path}"),
            msg: "no attempt".into(),
        }))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
        headers: &[(String, String)],
    ) -> Result<Value, PveError> {
        let call = format!("{method} {path}");
        self.calls.bump();
        let body = encode(params);
        let mut url = self.url(path);
        let with_body = method == "POST" || method == "PUT";
        if !with_body && !body.is_empty() {
            url = format!("{url}?{body}");
        }
        tracing::debug!(%call, "proxmox api request");
        let result = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                r.call()
            }
            _ => {
                let mut r = if method == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                r.header("Content-Type", "application/x-www-form-urlencoded")
                    .send(body.as_bytes())
            }
        };
        Self::answer(call, result)
    }

    /// The `data` of an answer, or the error it carries.
    fn answer(
        call: String,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, PveError> {
        let mut resp = result.map_err(|e| transport_error(&call, e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if status == 401 {
            return Err(PveError::Auth { call, status });
        }
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let reason = resp.status().canonical_reason().unwrap_or("").to_string();
            let message = json
                .get("message")
                .and_then(Value::as_str)
                .map(|m| m.trim_end().to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or(reason);
            let errors = json
                .get("errors")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().unwrap_or_default().trim_end().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Err(PveError::Api {
                call,
                status,
                message,
                errors,
            });
        }
        Ok(json.get("data").cloned().unwrap_or(Value::Null))
    }

    /// POST a file as `multipart/form-data` (the upload endpoints take the
    /// file as the last part, named `filename`), one attempt.
    fn send_file(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        filename: &str,
        data: &[u8],
    ) -> Result<Value, PveError> {
        let call = format!("POST {path}");
        self.calls.bump();
        let boundary = format!("nexcage-{:016x}", rand_boundary(data));
        let mut body = Vec::with_capacity(data.len() + 512);
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut r = self.agent.post(&self.url(path));
        for (k, v) in self.auth_headers("POST")? {
            r = r.header(k, v);
        }
        tracing::debug!(%call, bytes = data.len(), "proxmox api upload");
        let result = r
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..]);
        Self::answer(call, result)
    }

    /// Poll a task until it stops; `OK` and `WARNINGS: N` succeed.
    pub fn wait_task(&self, call: &str, upid: &str) -> Result<(), PveError> {
        let node = super::Upid::parse(upid)
            .map(|u| u.node)
            .unwrap_or_else(|| self.opts.node.clone());
        let path = format!("/nodes/{}/tasks/{}/status", seg(&node), seg(upid));
        let deadline = Instant::now() + self.opts.task_timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            let st = self.call("GET", &path, &BTreeMap::new())?;
            if st.get("status").and_then(Value::as_str) == Some("stopped") {
                let exit = st
                    .get("exitstatus")
                    .and_then(Value::as_str)
                    .unwrap_or("unexpected status")
                    .to_string();
                if exit == "OK" || exit.starts_with("WARNINGS") {
                    return Ok(());
                }
                let log_tail = self.task_log_tail(&node, upid);
                return Err(PveError::Task {
                    call: call.to_string(),
                    upid: upid.to_string(),
                    exitstatus: exit,
                    log_tail,
                });
            }
            if Instant::now() > deadline {
                return Err(PveError::Task {
                    call: call.to_string(),
                    upid: upid.to_string(),
                    exitstatus: "timed out waiting for the task".into(),
                    log_tail: vec![],
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    fn task_log_tail(&self, node: &str, upid: &str) -> Vec<String> {
        let path = format!("/nodes/{}/tasks/{}/log", seg(node), seg(upid));
        let lines = self
            .call("GET", &path, &p(&[("start", "0"), ("limit", "500")]))
            .unwrap_or(Value::Null);
        let all: Vec<String> = lines
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.get("t").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        all[all.len().saturating_sub(10)..].to_vec()
    }

    /// A call answering a UPID, then the wait.
    fn task_call(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), PveError> {
        let call = format!("{method} {path}");
        let upid = self.call(method, path, params)?;
        let upid = upid.as_str().ok_or_else(|| PveError::Parse {
            call: call.clone(),
            msg: format!("expected a UPID, got {upid}"),
        })?;
        self.wait_task(&call, upid)
    }

    fn lxc(&self, vmid: u32, rest: &str) -> String {
        format!("/nodes/{}/lxc/{vmid}{rest}", seg(&self.opts.node))
    }
}

fn transport_error(call: &str, e: ureq::Error) -> PveError {
    let msg = e.to_string();
    let tls = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_))
        || msg.contains("fingerprint")
        || msg.contains("certificate");
    if tls {
        PveError::Tls {
            call: call.to_string(),
            msg,
        }
    } else {
        PveError::Transport {
            call: call.to_string(),
            msg,
        }
    }
}

fn status_of(v: &Value) -> GuestStatus {
    match v.get("status").and_then(Value::as_str) {
        Some("running") => GuestStatus::Running,
        Some("stopped") => GuestStatus::Stopped,
        _ => GuestStatus::Unknown,
    }
}

fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl ControlPlane for ApiDriver {
    fn node(&self) -> &str {
        &self.opts.node
    }

    fn version(&self) -> Result<PveVersion, PveError> {
        let v = self.call("GET", "/version", &BTreeMap::new())?;
        let s = |k: &str| v.get(k).map(value_string).unwrap_or_default();
        Ok(PveVersion {
            version: s("version"),
            release: s("release"),
            repoid: s("repoid"),
        })
    }

    fn next_vmid(&self) -> Result<u32, PveError> {
        let v = self.call("GET", "/cluster/nextid", &BTreeMap::new())?;
        vmid_of(&v).ok_or_else(|| PveError::Parse {
            call: "GET /cluster/nextid".into(),
            msg: v.to_string(),
        })
    }

    fn create(&self, vmid: u32, req: &CreateRequest) -> Result<(), PveError> {
        let path = format!("/nodes/{}/lxc", seg(&self.opts.node));
        if !req.raw_lxc.is_empty() {
            return Err(PveError::Unsupported {
                call: format!("POST {path}"),
                driver: "api",
                why:
                    "raw lxc.* keys cannot be set through the API; render them into the LXC config"
                        .into(),
            });
        }
        let mut params = req.params.clone();
        params.insert("vmid".into(), vmid.to_string());
        params.insert("ostemplate".into(), req.ostemplate.clone());
        let res = self.task_call("POST", &path, &params);
        if let Err(e) = &res {
            if !e.is_already_exists() {
                cleanup_failed_create(self, vmid, req);
            }
        }
        res
    }

    fn set_config(
        &self,
        vmid: u32,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), PveError> {
        let mut params = set.clone();
        if !delete.is_empty() {
            params.insert("delete".into(), delete.join(","));
        }
        self.call("PUT", &self.lxc(vmid, "/config"), &params)
            .map(|_| ())
    }

    fn config(&self, vmid: u32) -> Result<GuestConfig, PveError> {
        let v = self.call("GET", &self.lxc(vmid, "/config"), &BTreeMap::new())?;
        let obj = v.as_object().ok_or_else(|| PveError::Parse {
            call: format!("GET {}", self.lxc(vmid, "/config")),
            msg: v.to_string(),
        })?;
        let mut cfg = GuestConfig::default();
        for (k, val) in obj {
            match k.as_str() {
                "digest" => cfg.digest = val.as_str().map(String::from),
                "lxc" => {
                    for pair in val.as_array().cloned().unwrap_or_default() {
                        if let Some([a, b]) = pair.as_array().map(|a| a.as_slice()) {
                            cfg.lxc.push((value_string(a), value_string(b)));
                        }
                    }
                }
                _ => {
                    cfg.keys.insert(k.clone(), value_string(val));
                }
            }
        }
        Ok(cfg)
    }

    fn status(&self, vmid: u32) -> Result<GuestStatus, PveError> {
        let v = self.call("GET", &self.lxc(vmid, "/status/current"), &BTreeMap::new())?;
        Ok(status_of(&v))
    }

    fn list(&self) -> Result<Vec<GuestSummary>, PveError> {
        let path = format!("/nodes/{}/lxc", seg(&self.opts.node));
        let v = self.call("GET", &path, &BTreeMap::new())?;
        let mut out = Vec::new();
        for g in v.as_array().cloned().unwrap_or_default() {
            let vmid = g.get("vmid").and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            });
            let Some(vmid) = vmid.and_then(|i| u32::try_from(i).ok()) else {
                continue;
            };
            let s = |k: &str| g.get(k).and_then(Value::as_str).map(String::from);
            out.push(GuestSummary {
                vmid,
                status: status_of(&g),
                name: s("name"),
                lock: s("lock"),
                tags: s("tags"),
            });
        }
        out.sort_by_key(|g| g.vmid);
        Ok(out)
    }

    fn start(&self, vmid: u32) -> Result<(), PveError> {
        self.task_call("POST", &self.lxc(vmid, "/status/start"), &BTreeMap::new())
    }

    fn stop(&self, vmid: u32) -> Result<(), PveError> {
        self.task_call("POST", &self.lxc(vmid, "/status/stop"), &BTreeMap::new())
    }

    fn destroy(&self, vmid: u32, purge: bool) -> Result<(), PveError> {
        let params = if purge {
            p(&[("purge", "1")])
        } else {
            BTreeMap::new()
        };
        self.task_call("DELETE", &self.lxc(vmid, ""), &params)
    }

    fn alloc_volume(&self, volume: &NewVolume<'_>) -> Result<String, PveError> {
        let path = format!(
            "/nodes/{}/storage/{}/content",
            seg(&self.opts.node),
            seg(volume.storage)
        );
        let vmid = volume.vmid.to_string();
        let params = p(&[
            ("vmid", &vmid),
            ("filename", volume.filename),
            ("size", volume.size),
            ("format", "subvol"),
        ]);
        let v = self.call("POST", &path, &params)?;
        v.as_str().map(String::from).ok_or_else(|| PveError::Parse {
            call: format!("POST {path}"),
            msg: v.to_string(),
        })
    }

    fn free_volume(&self, storage: &str, volid: &str) -> Result<(), PveError> {
        let path = format!(
            "/nodes/{}/storage/{}/content/{}",
            seg(&self.opts.node),
            seg(storage),
            seg(volid)
        );
        let v = self.call("DELETE", &path, &BTreeMap::new())?;
        // Freeing may run as a task (answer is a UPID) or synchronously (null).
        match v.as_str() {
            Some(upid) if upid.starts_with("UPID:") => {
                self.wait_task(&format!("DELETE {path}"), upid)
            }
            _ => Ok(()),
        }
    }

    fn privileges(
        &self,
        path: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, PveError> {
        let v = self.call("GET", "/access/permissions", &p(&[("path", path)]))?;
        Ok(Some(
            v.get(path)
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        ))
    }

    fn templates(&self, storage: &str) -> Result<Vec<String>, PveError> {
        let path = format!(
            "/nodes/{}/storage/{}/content",
            seg(&self.opts.node),
            seg(storage)
        );
        let v = self.call("GET", &path, &p(&[("content", "vztmpl")]))?;
        Ok(volids(&v))
    }

    fn upload_template(
        &self,
        storage: &str,
        filename: &str,
        data: &[u8],
    ) -> Result<String, PveError> {
        let path = format!(
            "/nodes/{}/storage/{}/upload",
            seg(&self.opts.node),
            seg(storage)
        );
        let v = self.send_file(&path, &[("content", "vztmpl")], filename, data)?;
        // The upload answers a UPID (the worker moves the file into place).
        if let Some(upid) = v.as_str().filter(|u| u.starts_with("UPID:")) {
            self.wait_task(&format!("POST {path}"), upid)?;
        }
        Ok(format!("{storage}:vztmpl/{filename}"))
    }

    fn calls(&self) -> u64 {
        self.calls.get()
    }
}

/// A multipart boundary that does not occur in `data` with overwhelming
/// likelihood: the data's hash mixed with the time.
fn rand_boundary(data: &[u8]) -> u64 {
    use sha2::Digest;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = sha2::Sha256::new()
        .chain_update(data)
        .chain_update(t.to_le_bytes())
        .finalize();
    u64::from_le_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// After a failed create, make sure nothing of *this* create stays
/// registered. Proxmox itself removes the config when the create task
/// fails; this covers the cases where it could not (crash, lost
/// connection). Only a guest still under `lock: create` whose description
/// carries `req.owner_line` is this create's: anything else at the VMID
/// (another creator's guest, an operator's) is left alone.
pub(crate) fn cleanup_failed_create(cp: &dyn ControlPlane, vmid: u32, req: &CreateRequest) {
    let Ok(cfg) = cp.config(vmid) else { return };
    if cfg.keys.get("lock").map(String::as_str) != Some("create") {
        return;
    }
    let ours = req.owner_line.as_deref().is_some_and(|line| {
        cfg.keys
            .get("description")
            .is_some_and(|d| d.lines().any(|l| l.trim_end() == line))
    });
    if !ours {
        tracing::warn!(vmid, "left half-created guest alone: its description is not this create's");
        return;
    }
    tracing::warn!(vmid, "removing half-created guest");
    if let Err(e) = cp.destroy(vmid, true) {
        tracing::warn!(vmid, error = %e, "could not remove half-created guest");
    }
}
