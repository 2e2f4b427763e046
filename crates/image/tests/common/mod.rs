//! Shared fixtures: a real docker-registry on 127.0.0.1, OCI layouts
//! built by hand from busybox-static, tool checks, tree comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

/// True if every tool exists; otherwise prints why the test is skipped.
pub fn have(test: &str, tools: &[&str]) -> bool {
    for t in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false);
        if !found {
            eprintln!("SKIPPING {test}: `{t}` is not installed (apt-get install -y docker-registry skopeo umoci podman busybox-static apache2-utils)");
            return false;
        }
    }
    true
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A docker-registry process with its own storage; killed on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(htpasswd, false)
    }

    /// With `tls`, serves https with a fresh self-signed certificate (openssl).
    pub fn start_with(htpasswd: Option<(&str, &str)>, tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        if let Some((u, p)) = htpasswd {
            let line = run(Command::new("htpasswd").args(["-Bbn", u, p]));
            let f = dir.path().join("htpasswd");
            std::fs::write(&f, line).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                f.display()
            );
        }
        let mut tls_cfg = String::new();
        if tls {
            // A CA and a server certificate it signed (rustls refuses a CA
            // certificate used as the server's own).
            let p = |n: &str| dir.path().join(n);
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nexcage test CA"])
                .arg("-keyout").arg(p("ca.key")).arg("-out").arg(p("ca.pem")));
            run(Command::new("openssl")
                .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
                .arg("-keyout").arg(p("key.pem")).arg("-out").arg(p("server.csr")));
            std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "1"])
                .arg("-in").arg(p("server.csr")).arg("-CA").arg(p("ca.pem")).arg("-CAkey").arg(p("ca.key"))
                .arg("-CAcreateserial").arg("-extfile").arg(p("ext.cnf")).arg("-out").arg(p("cert.pem")));
            tls_cfg = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p("cert.pem").display(),
                p("key.pem").display()
            );
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_cfg}{auth}",
            dir.path().join("data").display()
        );
        let cfgp = dir.path().join("config.yml");
        std::fs::write(&cfgp, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfgp)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { port, dir, child }
    }

    /// The CA that signed a TLS registry's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy` an OCI layout into this registry.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, all: bool, creds: Option<&str>) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        if let Some(cr) = creds {
            c.args(["--dest-creds", cr]);
        }
        c.arg(format!("oci:{}:{tag}", layout.display()));
        c.arg(format!("docker://{}/{repo}:{tag}", self.host()));
        run(&mut c);
    }

    /// Path of a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let h = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{h}/data",
            &h[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One entry of a hand-made layer.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Owned(&'a str, u32, u32, u32, &'a [u8]),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
}

pub fn tar_layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, m, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Owned(p, m, u, g, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_uid(*u as u64);
                h.set_gid(*g as u64);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Char(p, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Write a raw tar entry header for names the tar crate refuses to build
/// (`..`, absolute paths): GNU header with the name bytes set directly.
pub fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, ty, link, data) in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*ty);
        h.set_mode(if *ty == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A busybox rootfs as a layer: /bin/busybox, a few applet links, /etc files.
pub fn busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    tar_layer(&[
        E::Dir("bin", 0o755),
        E::File("bin/busybox", 0o755, &bb),
        E::Link("bin/sh", "busybox"),
        E::Link("bin/ls", "busybox"),
        E::Link("bin/cat", "/bin/busybox"),
        E::Hard("bin/echo", "bin/busybox"),
        E::Dir("etc", 0o755),
        E::File(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n",
        ),
        E::File("etc/group", 0o644, b"root:x:0:\nwww:x:44:\n"),
        E::Dir("tmp", 0o1777),
    ])
}

/// Builds an OCI image layout directory by hand.
pub struct Layout {
    pub dir: PathBuf,
    pub index: Vec<serde_json::Value>,
}

pub struct Built {
    pub manifest_digest: String,
    pub manifest_size: usize,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        }
    }

    pub fn blob(&self, data: &[u8]) -> String {
        let d = sha(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    }

    /// Add an image (layers given uncompressed; gzip-compressed if `gz`).
    pub fn image(
        &mut self,
        layers: &[Vec<u8>],
        arch: &str,
        config_extra: serde_json::Value,
        gz: bool,
    ) -> Built {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_digests = Vec::new();
        for l in layers {
            diff_ids.push(sha(l));
            let (data, mt) = if gz {
                (gzip(l), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (l.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let d = self.blob(&data);
            layer_digests.push(d.clone());
            descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": data.len()}));
        }
        let mut cfg = serde_json::json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if let serde_json::Value::Object(extra) = config_extra {
            for (k, v) in extra {
                cfg["config"][k] = v;
            }
        }
        let cfg = serde_json::to_vec(&cfg).unwrap();
        let cd = self.blob(&cfg);
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
            "layers": descs,
        });
        let m = serde_json::to_vec(&m).unwrap();
        let md = self.blob(&m);
        Built {
            manifest_digest: md,
            manifest_size: m.len(),
            config_digest: cd,
            layer_digests,
        }
    }

    pub fn tag(&mut self, b: &Built, tag: &str) {
        self.index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": b.manifest_digest, "size": b.manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
    }

    /// Tag an index of several images (multi-arch).
    pub fn tag_index(&mut self, images: &[(&Built, &str)], tag: &str) -> String {
        let ms: Vec<_> = images
            .iter()
            .map(|(b, arch)| {
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": b.manifest_digest, "size": b.manifest_size,
                    "platform": {"architecture": arch, "os": "linux"},
                })
            })
            .collect();
        let idx = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms,
        }))
        .unwrap();
        let d = self.blob(&idx);
        self.index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": idx.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        d
    }

    fn write_index(&self) {
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }
}

/// Every path under `root` with type, mode, owner, link target, content hash, device.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = md.file_type();
            let detail = if ft.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                format!(
                    "file {} nlink={}",
                    sha(&std::fs::read(&p).unwrap()),
                    md.nlink()
                )
            } else if ft.is_dir() {
                format!("dir mtime={}", md.mtime())
            } else {
                format!("special rdev={}", md.rdev())
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(
                rel,
                format!("{detail} mode={mode:o} uid={} gid={}", md.uid(), md.gid()),
            );
            if ft.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

pub fn diff_trees(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("only in first: {k} ({v})")),
            Some(w) if w != v => d.push(format!("differs: {k}: {v} vs {w}")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            d.push(format!("only in second: {k} ({v})"));
        }
    }
    d
}

/// Store dir + pull options for a local insecure registry.
pub fn insecure() -> nexcage_image::pull::PullOptions {
    let mut o = nexcage_image::pull::PullOptions::default();
    o.client.tls_verify = false;
    o.quiet = true;
    o
}

/// A one-file layer whose file carries the xattr `user.nexcage=works`
/// (a PAX `SCHILY.xattr` record).
pub fn xattr_layer(path: &str, mtime: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.nexcage", &b"works"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    b.append_data(&mut h, path, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}
