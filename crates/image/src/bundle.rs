//! `image bundle`: a runnable OCI bundle (rootfs + config.json) from an image.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Process, Spec, User};
use tracing::info;

use crate::error::{Error, IoContext, Result};
use crate::store::{ImageEntry, Store};
use crate::unpack::{unpack_rootfs, ApplyOptions, Root};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Read a small file from inside the rootfs, resolving symlinks within it.
fn read_in_root(root: &Root, rel: &str) -> Option<String> {
    let mut s = String::new();
    root.open_file(Path::new(rel))
        .ok()?
        .take(16 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Resolve an image `User` (`uid`, `uid:gid`, `name`, `name:group`) to
/// numeric ids plus supplementary groups, using the rootfs' passwd/group.
pub fn resolve_user(rootfs: Option<&Root>, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let user = user.trim();
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = rootfs
        .and_then(|r| read_in_root(r, "etc/passwd"))
        .unwrap_or_default();
    let groups = rootfs
        .and_then(|r| read_in_root(r, "etc/group"))
        .unwrap_or_default();
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let gr: Vec<Vec<&str>> = groups
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();

    let (uid, name, primary) = if let Ok(n) = u.parse::<u32>() {
        let e = pw.iter().find(|f| f[2].parse::<u32>().ok() == Some(n));
        (
            n,
            e.map(|f| f[0].to_string()),
            e.and_then(|f| f[3].parse::<u32>().ok()),
        )
    } else {
        let e = pw.iter().find(|f| f[0] == u).ok_or_else(|| {
            Error::Unsupported(format!("user {u:?} not found in the image's /etc/passwd"))
        })?;
        let uid = e[2]
            .parse()
            .map_err(|_| crate::error::malformed("/etc/passwd", format!("uid of {u}")))?;
        (uid, Some(u.to_string()), e[3].parse::<u32>().ok())
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Unsupported(format!("group {g:?} not found in the image's /etc/group"))
                })?,
        },
        None => primary.unwrap_or(0),
    };
    let mut extra = Vec::new();
    if let (Some(n), None) = (&name, g) {
        for f in &gr {
            if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !extra.contains(&id) {
                        extra.push(id);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

/// The runtime spec for an image: `runc spec`'s defaults (but a writable
/// root) plus the image's command, environment, working dir and user.
pub fn runtime_spec(
    cfg: &ImageConfiguration,
    rootfs: Option<&Root>,
    image_name: &str,
    digest: &str,
) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    // A writable root, as `docker run` / `podman run` give (runc spec's is read-only).
    if let Some(mut root) = spec.root().clone() {
        root.set_readonly(Some(false));
        spec.set_root(Some(root));
    }
    spec.set_hostname(Some("nexcage".to_string()));
    let c = cfg.config().clone().unwrap_or_default();
    let mut args: Vec<String> = c.entrypoint().clone().unwrap_or_default();
    args.extend(c.cmd().clone().unwrap_or_default());
    if args.is_empty() {
        args.push("sh".to_string());
    }
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let (uid, gid, extra) = resolve_user(rootfs, c.user().as_deref().unwrap_or(""))?;
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    if !extra.is_empty() {
        user.set_additional_gids(Some(extra));
    }
    let mut p = Process::default();
    // Like `runc spec`: no inheritable capabilities (CVE-2022-29162).
    if let Some(mut caps) = p.capabilities().clone() {
        caps.set_inheritable(None);
        p.set_capabilities(Some(caps));
    }
    p.set_args(Some(args));
    p.set_env(Some(env));
    p.set_cwd(PathBuf::from(
        c.working_dir()
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
    ));
    p.set_user(user);
    p.set_terminal(Some(false));
    spec.set_process(Some(p));
    // `runc spec`'s namespaces: pid, network, ipc, uts, mount. oci-spec adds
    // cgroup, which breaks the /sys/fs/cgroup mount on hybrid hosts.
    if let Some(mut linux) = spec.linux().clone() {
        let ns: Vec<LinuxNamespace> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Cgroup)
            .collect();
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
    }

    let mut ann: HashMap<String, String> = HashMap::new();
    ann.insert(
        "org.opencontainers.image.ref.name".into(),
        image_name.to_string(),
    );
    ann.insert("org.opencontainers.image.digest".into(), digest.to_string());
    if let Some(ports) = c.exposed_ports().clone().filter(|v| !v.is_empty()) {
        let mut ports = ports;
        ports.sort();
        ann.insert(
            "org.opencontainers.image.exposedPorts".into(),
            ports.join(","),
        );
    }
    if let Some(vols) = c.volumes().clone().filter(|v| !v.is_empty()) {
        let mut vols = vols;
        vols.sort();
        ann.insert("org.opencontainers.image.volumes".into(), vols.join(","));
    }
    if let Some(sig) = c.stop_signal() {
        ann.insert("org.opencontainers.image.stopSignal".into(), sig.clone());
    }
    spec.set_annotations(Some(ann));
    Ok(spec)
}

/// Unpack `image` into `<dir>/rootfs` and write `<dir>/config.json`.
pub fn create_bundle(
    store: &Store,
    image: &ImageEntry,
    dir: &Path,
    opts: &ApplyOptions,
) -> Result<()> {
    let rootfs = dir.join("rootfs");
    unpack_rootfs(store, image, &rootfs, opts)?;
    let m = store.image_manifest(image)?;
    let cfg = store.config(&m)?;
    let root = Root::open(&rootfs).ctx(&rootfs)?;
    let spec = runtime_spec(
        &cfg,
        Some(&root),
        &image.name,
        image.descriptor.digest().as_ref(),
    )?;
    let data = serde_json::to_vec_pretty(&spec)?;
    let path = dir.join("config.json");
    std::fs::write(&path, data).ctx(&path)?;
    info!(bundle = %dir.display(), image = image.name, "bundle ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:44:\nextra:x:50:web,other\n",
        )
        .unwrap();
        let r = Root::open(d.path()).unwrap();
        assert_eq!(resolve_user(Some(&r), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(Some(&r), "1000").unwrap(), (1000, 0, vec![]));
        assert_eq!(resolve_user(Some(&r), "1000:7").unwrap(), (1000, 7, vec![]));
        assert_eq!(resolve_user(Some(&r), "web").unwrap(), (33, 44, vec![50]));
        assert_eq!(
            resolve_user(Some(&r), "web:extra").unwrap(),
            (33, 50, vec![])
        );
        assert!(resolve_user(Some(&r), "nobody").is_err());
    }
}
