//! The CLI driver: `pct` and `pvesh` on the node (each call starts perl,
//! ~1-1.7 s on a real node: use the API driver on hot paths). `env` and
//! raw `lxc.*` keys cannot travel as CLI arguments (NUL bytes, no such
//! parameter), so this driver writes them into the guest config file
//! under pmxcfs itself, holding Proxmox's per-guest config lock.

use super::guestfile::{write_replacing, GuestFiles};
use super::{
    versions::NodeVersions, vmid_of, volids, CallCounter, ControlPlane, CreateRequest, GuestConfig,
    GuestStatus, GuestSummary, NewVolume, PveError, PveVersion,
};
use crate::conffile;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct PctOptions {
    pub node: String,
    /// `pct` binary (default: found on PATH).
    pub pct: PathBuf,
    /// `pvesh` binary (default: found on PATH).
    pub pvesh: PathBuf,
    /// `pveversion` binary (default: found on PATH).
    pub pveversion: PathBuf,
    /// `pvesm` binary (default: found on PATH).
    pub pvesm: PathBuf,
    /// pmxcfs mount (default `/etc/pve`): configs are `nodes/<node>/lxc/<vmid>.conf`.
    pub pve_root: PathBuf,
    /// Proxmox's config lock dir (default `/run/lock/lxc`).
    pub lock_dir: PathBuf,
    /// Extra environment for the spawned commands.
    pub env: Vec<(String, String)>,
}

impl PctOptions {
    pub fn new(node: &str) -> Self {
        PctOptions {
            node: node.into(),
            pct: "pct".into(),
            pvesh: "pvesh".into(),
            pveversion: "pveversion".into(),
            pvesm: "pvesm".into(),
            pve_root: "/etc/pve".into(),
            lock_dir: "/run/lock/lxc".into(),
            env: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct PctDriver {
    opts: PctOptions,
    calls: CallCounter,
}

impl PctDriver {
    pub fn new(opts: PctOptions) -> Self {
        PctDriver {
            opts,
            calls: CallCounter::default(),
        }
    }

    /// Run a command; Ok(stdout) on exit 0.
    fn run(&self, program: &PathBuf, args: &[String]) -> Result<String, PveError> {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The call as shown in errors: command and its first operands (no values).
        let call = std::iter::once(name.clone())
            .chain(args.iter().take(2).cloned())
            .collect::<Vec<_>>()
            .join(" ");
        self.calls.bump();
        tracing::debug!(%call, "running Proxmox CLI");
        let out = Command::new(program)
            .args(args)
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| PveError::Spawn {
                call: call.clone(),
                program: program.display().to_string(),
                source,
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(PveError::Cli {
            call,
            code: out.status.code().unwrap_or(-1),
            stderr: stderr.join("; "),
        })
    }

    fn pct(&self, args: &[String]) -> Result<String, PveError> {
        self.run(&self.opts.pct, args)
    }

    fn pvesh(&self, args: &[String]) -> Result<String, PveError> {
        self.run(&self.opts.pvesh, args)
    }

    /// Set `env` and append raw keys in the guest config file, under
    /// Proxmox's config lock ([`GuestFiles::edit`]).
    fn edit_file(
        &self,
        vmid: u32,
        env: Option<&str>,
        raw: &[(String, String)],
    ) -> Result<(), PveError> {
        self.files().edit(vmid, |cfg| {
            if let Some(e) = env {
                cfg.main.keys.insert("env".into(), e.to_string());
            }
            cfg.main.lxc.extend(raw.iter().cloned());
        })
    }

    fn files(&self) -> GuestFiles {
        GuestFiles {
            node: self.opts.node.clone(),
            pve_root: self.opts.pve_root.clone(),
            lock_dir: self.opts.lock_dir.clone(),
        }
    }
}

/// `--key value` pairs, `env` left out (NUL cannot be an argument).
fn cli_args(params: &BTreeMap<String, String>) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k.as_str() != "env")
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

fn parse_json(call: &str, out: &str) -> Result<Value, PveError> {
    serde_json::from_str(out.trim()).map_err(|e| PveError::Parse {
        call: call.into(),
        msg: format!("{e}: {}", out.trim()),
    })
}

fn parse_status(s: &str) -> GuestStatus {
    match s.trim() {
        "running" => GuestStatus::Running,
        "stopped" => GuestStatus::Stopped,
        _ => GuestStatus::Unknown,
    }
}

/// Parse `pct list` (`%-10s %-10s %-12s %-20s`, header `VMID Status Lock Name`).
pub fn parse_pct_list(out: &str) -> Vec<GuestSummary> {
    let col =
        |l: &str, a: usize, b: usize| l.get(a..b.min(l.len())).unwrap_or("").trim().to_string();
    let mut v = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(vmid) = col(line, 0, 10).parse::<u32>() else {
            continue;
        }; // header
        let lock = col(line, 22, 34);
        let name = col(line, 35, usize::MAX);
        v.push(GuestSummary {
            vmid,
            status: parse_status(&col(line, 11, 21)),
            lock: Some(lock).filter(|s| !s.is_empty()),
            name: Some(name).filter(|s| !s.is_empty()),
            tags: None,
        });
    }
    v
}

/// Parse `pct config` output.
pub fn parse_pct_config(out: &str) -> GuestConfig {
    let mut cfg = GuestConfig::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once(": ") else {
            continue;
        };
        if k.starts_with("lxc.") {
            cfg.lxc.push((k.to_string(), v.to_string()));
        } else if k == "description" {
            cfg.keys.insert(k.into(), conffile::decode_text(v));
        } else {
            cfg.keys.insert(k.to_string(), v.to_string());
        }
    }
    cfg
}

impl ControlPlane for PctDriver {
    fn node(&self) -> &str {
        &self.opts.node
    }

    fn version(&self) -> Result<PveVersion, PveError> {
        let out = self.pvesh(&[
            "get".into(),
            "/version".into(),
            "--output-format".into(),
            "json".into(),
        ])?;
        let v = parse_json("pvesh get /version", &out)?;
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(PveVersion {
            version: s("version"),
            release: s("release"),
            repoid: s("repoid"),
        })
    }

    /// `pveversion -v`; where it cannot run (no such program), GET /version.
    fn node_versions(&self) -> Result<NodeVersions, PveError> {
        match self.run(&self.opts.pveversion, &["-v".to_string()]) {
            Ok(out) => NodeVersions::parse_pveversion(&out).ok_or_else(|| PveError::Parse {
                call: "pveversion -v".into(),
                msg: format!("no pve-manager line in: {}", out.trim()),
            }),
            Err(PveError::Spawn { .. }) => self
                .version()
                .map(|v| NodeVersions::from_manager(&v.version)),
            Err(e) => Err(e),
        }
    }

    fn templates(&self, storage: &str) -> Result<Vec<String>, PveError> {
        let path = format!("/nodes/{}/storage/{storage}/content", self.opts.node);
        let out = self.pvesh(&[
            "get".into(),
            path.clone(),
            "--content".into(),
            "vztmpl".into(),
            "--output-format".into(),
            "json".into(),
        ])?;
        Ok(volids(&parse_json(&format!("pvesh get {path}"), &out)?))
    }

    /// Writes the file where `pvesm path` puts the volume (a `dir`
    /// storage's `template/cache`), via a temporary file and rename so a
    /// concurrent create never sees half a template.
    fn upload_template(
        &self,
        storage: &str,
        filename: &str,
        data: &[u8],
    ) -> Result<String, PveError> {
        let volid = format!("{storage}:vztmpl/{filename}");
        let out = self.run(&self.opts.pvesm, &["path".into(), volid.clone()])?;
        let path = PathBuf::from(out.trim());
        let call = format!("write {}", path.display());
        let io = |source| PveError::Io {
            call: call.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        write_replacing(&path, data).map_err(io)?;
        Ok(volid)
    }

    fn next_vmid(&self) -> Result<u32, PveError> {
        let out = self.pvesh(&[
            "get".into(),
            "/cluster/nextid".into(),
            "--output-format".into(),
            "json".into(),
        ])?;
        let v = parse_json("pvesh get /cluster/nextid", &out)?;
        vmid_of(&v).ok_or_else(|| PveError::Parse {
            call: "pvesh get /cluster/nextid".into(),
            msg: out.trim().to_string(),
        })
    }

    fn create(&self, vmid: u32, req: &CreateRequest) -> Result<(), PveError> {
        let mut args = vec![
            "create".to_string(),
            vmid.to_string(),
            req.ostemplate.clone(),
        ];
        args.extend(cli_args(&req.params));
        if let Err(e) = self.pct(&args) {
            if !e.is_already_exists() {
                super::api::cleanup_failed_create(self, vmid, req);
            }
            return Err(e);
        }
        let env = req.params.get("env").map(String::as_str);
        if env.is_some() || !req.raw_lxc.is_empty() {
            if let Err(e) = self.edit_file(vmid, env, &req.raw_lxc) {
                // Leave nothing registered.
                let _ = self.destroy(vmid, true);
                return Err(e);
            }
        }
        Ok(())
    }

    fn set_config(
        &self,
        vmid: u32,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), PveError> {
        let mut args = vec!["set".to_string(), vmid.to_string()];
        args.extend(cli_args(set));
        if !delete.is_empty() {
            args.extend(["--delete".to_string(), delete.join(",")]);
        }
        if args.len() > 2 {
            self.pct(&args)?;
        }
        if let Some(env) = set.get("env") {
            self.edit_file(vmid, Some(env), &[])?;
        }
        Ok(())
    }

    fn config(&self, vmid: u32) -> Result<GuestConfig, PveError> {
        let out = self.pct(&["config".into(), vmid.to_string()])?;
        Ok(parse_pct_config(&out))
    }

    fn status(&self, vmid: u32) -> Result<GuestStatus, PveError> {
        let out = self.pct(&["status".into(), vmid.to_string()])?;
        let s = out
            .lines()
            .find_map(|l| l.strip_prefix("status:"))
            .unwrap_or("unknown");
        Ok(parse_status(s))
    }

    fn list(&self) -> Result<Vec<GuestSummary>, PveError> {
        Ok(parse_pct_list(&self.pct(&["list".into()])?))
    }

    fn start(&self, vmid: u32) -> Result<(), PveError> {
        self.pct(&["start".into(), vmid.to_string()]).map(|_| ())
    }

    fn stop(&self, vmid: u32) -> Result<(), PveError> {
        self.pct(&["stop".into(), vmid.to_string()]).map(|_| ())
    }

    fn destroy(&self, vmid: u32, purge: bool) -> Result<(), PveError> {
        let mut args = vec!["destroy".to_string(), vmid.to_string()];
        if purge {
            args.extend(["--purge".to_string(), "1".to_string()]);
        }
        self.pct(&args).map(|_| ())
    }

    fn alloc_volume(&self, volume: &NewVolume<'_>) -> Result<String, PveError> {
        let path = format!(
            "/nodes/{}/storage/{}/content",
            self.opts.node, volume.storage
        );
        let args: Vec<String> = [
            "create",
            &path,
            "--vmid",
            &volume.vmid.to_string(),
            "--filename",
            volume.filename,
            "--size",
            volume.size,
            "--format",
            "subvol",
            "--output-format",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = self.pvesh(&args)?;
        let v = parse_json(&format!("pvesh create {path}"), &out)?;
        v.as_str().map(String::from).ok_or_else(|| PveError::Parse {
            call: format!("pvesh create {path}"),
            msg: out,
        })
    }

    fn free_volume(&self, storage: &str, volid: &str) -> Result<(), PveError> {
        let path = format!(
            "/nodes/{}/storage/{storage}/content/{volid}",
            self.opts.node
        );
        self.pvesh(&["delete".into(), path]).map(|_| ())
    }

    fn calls(&self) -> u64 {
        self.calls.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pct_list() {
        let out = format!(
            "{:<10} {:<10} {:<12} {:<20}\n{:<10} {:<10} {:<12} {:<20}\n{:<10} {:<10} {:<12} {:<20}\n",
            "VMID", "Status", "Lock", "Name", "100", "running", "", "web", "101", "stopped", "create", "CT101"
        );
        let l = parse_pct_list(&out);
        assert_eq!(l.len(), 2);
        assert_eq!(
            (
                l[0].vmid,
                l[0].status,
                l[0].lock.clone(),
                l[0].name.as_deref()
            ),
            (100, GuestStatus::Running, None, Some("web"))
        );
        assert_eq!(l[1].lock.as_deref(), Some("create"));
    }

    #[test]
    fn parses_pct_config() {
        let c = parse_pct_config(
            "arch: amd64\ndescription: a%3Ab%0A\nmemory: 64\nlxc.init.cwd: /srv\n",
        );
        assert_eq!(c.keys["description"], "a:b\n");
        assert_eq!(
            c.lxc,
            vec![("lxc.init.cwd".to_string(), "/srv".to_string())]
        );
    }
}
