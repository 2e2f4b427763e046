//! Create step `template`: what the node accepts, read once per host and
//! cached, and the empty container template `pct create` unpacks, put on
//! `proxmox.template_storage` when missing (PROXMOX-FACTS §10 "Create on a
//! real node": `ostemplate` must name an existing volume; plain `.tar` only
//! from libpve-storage-perl 9.0.15, `entrypoint` only from pve-container
//! 6.0.15).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nexcage_pve::driver::{ControlPlane, CreateRequest, NodeVersions, PveError, TemplateFormat};
use serde::{Deserialize, Serialize};

use super::Proxmox;

/// `proxmox.storage` when unset (as create's rootfs volumes).
pub const DEFAULT_STORAGE: &str = "local-zfs";

/// How long the node's versions and the template's presence are trusted.
const CACHE_TTL: Duration = Duration::from_secs(600);

/// Directories of the empty rootfs (with their modes): the mount points
/// LXC needs in any rootfs; nexcage's own rootfs replaces the rest.
const ROOTFS_DIRS: [(&str, u32); 6] = [("dev", 0o755), ("etc", 0o755), ("proc", 0o555), ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777)];

/// What create may ask of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSupport {
    /// Volume id of the empty template (`local:vztmpl/nexcage-empty.tar.gz`).
    pub ostemplate: String,
    /// Whether `entrypoint` and `env` are guest options.
    pub entrypoint: bool,
    /// Whether this host's LXC reads `lxc.environment.runtime` (see
    /// [`lxc_reads_runtime_env`]; cached with the node's versions).
    pub runtime_env: bool,
}

/// The cache file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    versions: NodeVersions,
    /// Seconds since the epoch when the node was asked.
    checked: u64,
    /// The template volume seen (or made) then.
    template: Option<String>,
    /// [`lxc_reads_runtime_env`] then (absent in an older cache: probed).
    #[serde(default)]
    runtime_env: Option<bool>,
}

/// Reads the node's versions (cached per node in the data dir for
/// [`CACHE_TTL`]), refuses a release too old, and makes sure the empty
/// template in the format the node reads is on the template storage.
/// Errors: the node's versions cannot be read, the release is older than
/// the minimum (naming both), the template cannot be listed or uploaded.
pub fn prepare(px: &Proxmox, cp: &dyn ControlPlane) -> Result<NodeSupport> {
    let storage = px.config().proxmox.template_storage();
    let cache = cache_path(&px.config().data_dir(), cp.node(), px.config());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let cached = read_cache(&cache).filter(|c| now.saturating_sub(c.checked) < CACHE_TTL.as_secs());
    let (versions, known, runtime_env) = match cached {
        Some(c) => (c.versions, c.template, c.runtime_env),
        None => (cp.node_versions().context("read the Proxmox node's versions")?, None, None),
    };
    versions.check_supported()?;
    let format = versions.template_format();
    let volid = format!("{storage}:vztmpl/{}", format.file_name());
    let template_known = known.as_deref() == Some(volid.as_str());
    if !template_known {
        let present = template_present(cp, storage, &volid)?;
        check_privileges(px.config(), cp, !present)?;
        if !present {
            upload(cp, storage, format, &volid)?;
        }
    }
    let runtime_env_known = runtime_env.is_some();
    let runtime_env = runtime_env.unwrap_or_else(lxc_reads_runtime_env);
    if !template_known || !runtime_env_known {
        write_cache(&cache, &Cached { versions: versions.clone(), checked: now, template: Some(volid.clone()), runtime_env: Some(runtime_env) });
    }
    Ok(NodeSupport { ostemplate: volid, entrypoint: versions.entrypoint(), runtime_env })
}

/// Registers guest `vmid` (`cp.create`) with `req`, whose `ostemplate` came
/// from [`prepare`]. The cache may still name a template an operator has
/// removed since: the node's create then dies "can't find file" (pve-storage
/// `abs_filesystem_path`, PROXMOX-FACTS section 10) and has removed what it
/// began. Then the cache is dropped, the node asked again (the template put
/// back) and the create tried once more. Outer error: the node could not
/// be prepared again; inner: the control plane's answer to the create.
pub fn create_guest(px: &Proxmox, cp: &dyn ControlPlane, vmid: u32, node: &NodeSupport, req: &mut CreateRequest) -> Result<Result<(), PveError>> {
    if req.params.contains_key("env") && !node.runtime_env {
        // PVE renders `env` as `lxc.environment.runtime` lines (PROXMOX-FACTS
        // §2 item 22), which LXC before 6 cannot parse: every regeneration
        // would leave a `config` no LXC tool loads. The env is in
        // nexcage.conf either way.
        tracing::info!(vmid, "this host's LXC cannot read lxc.environment.runtime: env is not registered with Proxmox");
        req.params.remove("env");
    }
    match cp.create(vmid, req) {
        Err(e) if template_missing(&e, &req.ostemplate) => {
            tracing::warn!(vmid, ostemplate = %req.ostemplate, "the node lost the template nexcage's cache named: asking it again");
            forget(px, cp);
            req.ostemplate = prepare(px, cp)?.ostemplate;
            Ok(cp.create(vmid, req))
        }
        r => Ok(r),
    }
}

/// Whether this host's LXC parses `lxc.environment.runtime` (added in LXC
/// 6; 5.0 refuses the whole file): a config holding only that line, loaded
/// with `lxc-info -c`. No LXC tools: false.
fn lxc_reads_runtime_env() -> bool {
    let dir = std::env::temp_dir().join(format!("nexcage-lxc-probe-{}", std::process::id()));
    let ok = std::fs::create_dir_all(dir.join("probe"))
        .and_then(|()| std::fs::write(dir.join("probe/config"), "lxc.environment.runtime = NEXCAGE_PROBE=1\n"))
        .ok()
        .and_then(|()| {
            std::process::Command::new(super::resolve("lxc-info"))
                .args(["-n", "probe", "-c", "lxc.environment.runtime", "-P"])
                .arg(&dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .ok()
        })
        .is_some_and(|st| st.success());
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

/// Whether `e` is the node saying that the template `volid` does not exist.
fn template_missing(e: &PveError, volid: &str) -> bool {
    let text = e.to_string();
    text.contains(volid) && (text.contains("can't find file") || text.contains("does not exist"))
}

/// Drops the cached answer for this node (the next [`prepare`] asks it).
fn forget(px: &Proxmox, cp: &dyn ControlPlane) {
    let cache = cache_path(&px.config().data_dir(), cp.node(), px.config());
    if let Err(e) = std::fs::remove_file(&cache) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", cache.display());
        }
    }
}

/// Whether `storage` lists `volid` among its templates.
fn template_present(cp: &dyn ControlPlane, storage: &str, volid: &str) -> Result<bool> {
    let list = cp.templates(storage).with_context(|| format!("list the templates on storage {storage} (proxmox.template_storage)"))?;
    Ok(list.iter().any(|v| v == volid))
}

/// The Proxmox setup `cfg` asks for (the privileges it needs).
pub fn setup(cfg: &nexcage_config::Config, upload: bool) -> nexcage_pve::driver::Setup<'_> {
    nexcage_pve::driver::Setup {
        storage: cfg.proxmox.storage.as_deref().unwrap_or(DEFAULT_STORAGE),
        template_storage: cfg.proxmox.template_storage(),
        bridge: cfg.network.bridge.as_deref(),
        privileged: !cfg.unprivileged(),
        upload,
    }
}

/// One error naming every privilege the user lacks (PROXMOX-FACTS §10),
/// before anything is made.
fn check_privileges(cfg: &nexcage_config::Config, cp: &dyn ControlPlane, upload: bool) -> Result<()> {
    let lacking = nexcage_pve::driver::lacking_privileges(cp, &setup(cfg, upload)).context("read the token's privileges (GET /access/permissions)")?;
    if lacking.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = lacking.iter().map(ToString::to_string).collect();
    anyhow::bail!("the Proxmox user lacks privileges nexcage needs: {} (grant them, e.g. {})", list.join("; "), lacking[0].hint())
}

/// Puts the empty template on `storage`.
fn upload(cp: &dyn ControlPlane, storage: &str, format: TemplateFormat, volid: &str) -> Result<()> {
    tracing::info!(%volid, "uploading nexcage's empty container template");
    let data = empty_template(format)?;
    cp.upload_template(storage, format.file_name(), &data)
        .with_context(|| format!("put the empty template {volid} on storage {storage} (proxmox.template_storage; needs Datastore.AllocateTemplate)"))?;
    Ok(())
}

/// The empty rootfs archive in `format`: only [`ROOTFS_DIRS`], owned by
/// root, mtime 0 (so every node gets the same bytes).
pub fn empty_template(format: TemplateFormat) -> Result<Vec<u8>> {
    let tar = empty_tar()?;
    match format {
        TemplateFormat::Tar => Ok(tar),
        TemplateFormat::TarGz => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&tar)?;
            Ok(gz.finish()?)
        }
    }
}

fn empty_tar() -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in std::iter::once((".", 0o755)).chain(ROOTFS_DIRS) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        let name = if dir == "." { "./".to_string() } else { format!("./{dir}/") };
        b.append_data(&mut h, name, std::io::empty())?;
    }
    Ok(b.into_inner()?)
}

/// `<data dir>/proxmox-node-<node>-<driver>.json`: one per node and way of
/// reaching it, shared by every state root (containerd's, Podman's). The
/// pct driver's key names the `pct` found and the node's config root, so
/// two Proxmox nodes' tools (or test doubles) on one host never share it.
fn cache_path(data_dir: &Path, node: &str, cfg: &nexcage_config::Config) -> PathBuf {
    let host = match cfg.driver() {
        nexcage_config::Driver::Pct => {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            (super::resolve("pct"), &cfg.proxmox.pve_root).hash(&mut h);
            format!("pct-{:016x}", h.finish())
        }
        nexcage_config::Driver::Api => format!("api-{}-{}", cfg.api_host(), cfg.api_port()),
    };
    let key: String = format!("{node}-{host}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    data_dir.join(format!("proxmox-node-{key}.json"))
}

fn read_cache(path: &Path) -> Option<Cached> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Best effort: a cache that cannot be written costs a lookup next time.
fn write_cache(path: &Path, c: &Cached) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let r = serde_json::to_vec(c).map_err(std::io::Error::other).and_then(|b| std::fs::write(&tmp, b)).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        tracing::debug!("cannot write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
    }

    #[test]
    fn empty_template_in_both_formats() {
        let plain = empty_template(TemplateFormat::Tar).unwrap();
        let n: Vec<String> = names(&plain).iter().map(|s| s.trim_start_matches("./").trim_end_matches('/').to_string()).collect();
        assert_eq!(n, ["", "dev", "etc", "proc", "root", "sys", "tmp"]);
        let gz = empty_template(TemplateFormat::TarGz).unwrap();
        assert_eq!(&gz[..2], [0x1f, 0x8b], "gzip magic");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, plain);
        // Same bytes every time (mtime 0).
        assert_eq!(empty_template(TemplateFormat::TarGz).unwrap(), gz);
    }
}
