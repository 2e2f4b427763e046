//! `nexcage network test` and `nexcage registry auth`: can this node reach
//! the registries it pulls from and the Proxmox API, and are the stored
//! credentials accepted? One ok / warn / fail line each (admin::report).

use nexcage_image::registry::{auth, ClientOptions, RegistryClient};

use super::report::{Level, Report};
use crate::context::Ctx;

/// The registries to try: those named with `--registry`, those with
/// stored credentials (`login`), and Docker Hub, each once.
fn registries(extra: &[String], r: &mut Report) -> Vec<String> {
    let mut v: Vec<String> = extra.to_vec();
    match auth::logged_in_registries(None) {
        Ok(l) => v.extend(l),
        Err(e) => r.line(Level::Warn, "auth file", &e.to_string(), "fix or remove the file; nexcage login rewrites it"),
    }
    v.push(nexcage_image::reference::DOCKER_HUB.to_string());
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

fn config(ctx: &Ctx, r: &mut Report) -> nexcage_config::Config {
    ctx.config().unwrap_or_else(|e| {
        r.line(Level::Fail, "config", &crate::logging::error_text(&e), "fix the file or nexcage config set KEY VALUE");
        nexcage_config::Config::default()
    })
}

/// `network test`: a `GET /v2/` to each registry, then the Proxmox API
/// (as `system check`). Returns whether anything failed.
pub fn network_test(ctx: &Ctx, extra: &[String], tls_verify: bool) -> bool {
    let mut r = Report::default();
    let cfg = config(ctx, &mut r);
    for reg in registries(extra, &mut r) {
        let opts = ClientOptions { tls_verify, attempts: 1, ..ClientOptions::default() };
        match RegistryClient::for_registry(&reg, &opts).and_then(|c| c.ping().map(|s| (c, s))) {
            Ok((c, status)) => r.line(Level::Ok, "registry", &format!("{reg} reachable at {} (HTTP {status})", c.base_url()), ""),
            // Docker Hub is only the default: a node that pulls elsewhere need not reach it.
            Err(e) if reg == nexcage_image::reference::DOCKER_HUB && !extra.contains(&reg) => {
                r.line(Level::Warn, "registry", &format!("{reg}: {e}"), "pulls from Docker Hub need network access (or use image import)")
            }
            Err(e) => r.line(Level::Fail, "registry", &format!("{reg}: {e}"), "check DNS, routes and proxies; a plain-http registry needs --tls-verify=false"),
        }
    }
    super::check::proxmox(&mut r, &cfg);
    r.failed
}

/// `registry auth`: the stored credentials of each registry tried against
/// it (as `login` does), then the Proxmox API token. Returns whether
/// anything failed.
pub fn registry_auth(ctx: &Ctx, tls_verify: bool) -> bool {
    let mut r = Report::default();
    let cfg = config(ctx, &mut r);
    let regs = auth::logged_in_registries(None).unwrap_or_else(|e| {
        r.line(Level::Fail, "auth file", &e.to_string(), "fix or remove the file; nexcage login rewrites it");
        Vec::new()
    });
    if regs.is_empty() {
        r.line(Level::Warn, "registry credentials", "none stored", "nexcage login REGISTRY");
    }
    for reg in regs {
        let check = || -> anyhow::Result<()> {
            let credentials = auth::lookup_credentials(&reg, None)?;
            let opts = ClientOptions { tls_verify, credentials, attempts: 1, ..ClientOptions::default() };
            Ok(RegistryClient::for_registry(&reg, &opts)?.check_login()?)
        };
        match check() {
            Ok(()) => r.line(Level::Ok, "registry credentials", &format!("{reg} accepts them"), ""),
            Err(e) => r.line(Level::Fail, "registry credentials", &format!("{reg}: {}", crate::logging::error_text(&e)), &format!("nexcage login {reg}")),
        }
    }
    super::check::proxmox(&mut r, &cfg);
    r.failed
}
