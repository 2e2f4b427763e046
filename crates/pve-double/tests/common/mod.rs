//! Starting the double for tests: `pve-double serve` on 127.0.0.1:0 in a
//! temp state dir, plus `pct`/`pvesh` symlinks to the same binary.
#![allow(dead_code)]

use nexcage_config::Secret;
use nexcage_pve::driver::api::{ApiDriver, ApiOptions, Auth};
use nexcage_pve::driver::pct::{PctDriver, PctOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN_ID: &str = "root@pam!nexcage";
pub const TOKEN_SECRET: &str = "0b4c3e4e-5b0e-4c53-9d7a-3f2a1c9e8d71";
pub const ROOT_PW: &str = "rootpw12";

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pve/schema/pve-api-subset.json")
}

pub struct Double {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub fingerprint: [u8; 32],
    child: Child,
}

impl Double {
    pub fn start() -> Double {
        Self::start_with_env(&[])
    }

    /// Start with extra environment for `serve` (e.g. `PVE_DOUBLE_TASK_DELAY_MS`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Double {
        Self::start_with(env, &[])
    }

    /// Start with extra environment and `serve` options. The LXC path is
    /// always `<state>/lxc` (never the host's /var/lib/lxc), and the
    /// templates the tests name (`local:vztmpl/nexcage-empty.tar`,
    /// `local:vztmpl/x.tar`) are placed in the storage.
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> Double {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pve-double"))
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--node", "pve"])
            .arg("--lxc-path")
            .arg(dir.path().join("lxc"))
            .args(args)
            .arg("--state")
            .arg(dir.path())
            .arg("--schema")
            .arg(schema_path())
            .args(["--token", &format!("{TOKEN_ID}={TOKEN_SECRET}")])
            .args(["--user", &format!("root@pam:{ROOT_PW}")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(dir.path().join("port")) {
                break p.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "pve-double did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let fp = std::fs::read_to_string(dir.path().join("fingerprint")).unwrap();
        let fingerprint = nexcage_config::parse_fingerprint(fp.trim()).unwrap();
        // The pct/pvesh personalities: symlinks named after them.
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["pct", "pvesh", "pveversion", "vzdump"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pve-double"), bin.join(name)).unwrap();
        }
        let d = Double {
            dir,
            port,
            fingerprint,
            child,
        };
        for t in ["nexcage-empty.tar", "x.tar"] {
            d.place_template("local", t);
        }
        d
    }

    /// An (empty) template file at `storage/<storage>/vztmpl/<name>`.
    pub fn place_template(&self, storage: &str, name: &str) {
        let dir = self.path().join("storage").join(storage).join("vztmpl");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), vec![0u8; 10240]).unwrap();
    }

    /// `<state>/lxc`, the double's LXC path.
    pub fn lxc_path(&self) -> PathBuf {
        self.path().join("lxc")
    }

    /// Run a personality (`pct`, `pvesh`, `pveversion`, `vzdump`) on this
    /// double's state: (exit code, stdout, stderr).
    pub fn cli(&self, personality: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.path().join("bin").join(personality))
            .args(args)
            .env("PVE_DOUBLE_STATE", self.path())
            .env("PVE_DOUBLE_SCHEMA", schema_path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn api_opts(&self, auth: Auth) -> ApiOptions {
        let mut o = ApiOptions::new("127.0.0.1", self.port, "pve", auth);
        o.fingerprint = Some(self.fingerprint);
        o.timeout = Duration::from_secs(20);
        o
    }

    pub fn token() -> Auth {
        Auth::Token {
            id: TOKEN_ID.into(),
            secret: Secret::new(TOKEN_SECRET),
        }
    }

    pub fn api(&self) -> ApiDriver {
        ApiDriver::new(self.api_opts(Self::token())).unwrap()
    }

    pub fn api_root_ticket(&self) -> ApiDriver {
        ApiDriver::new(self.api_opts(Auth::Password {
            username: "root@pam".into(),
            password: Secret::new(ROOT_PW),
        }))
        .unwrap()
    }

    pub fn pct_opts(&self) -> PctOptions {
        let mut o = PctOptions::new("pve");
        o.pct = self.path().join("bin/pct");
        o.pvesh = self.path().join("bin/pvesh");
        o.pve_root = self.path().to_path_buf();
        o.lock_dir = self.path().join("lock");
        o.env = vec![
            ("PVE_DOUBLE_STATE".into(), self.path().display().to_string()),
            (
                "PVE_DOUBLE_SCHEMA".into(),
                schema_path().display().to_string(),
            ),
        ];
        o
    }

    pub fn pct(&self) -> PctDriver {
        PctDriver::new(self.pct_opts())
    }

    pub fn violations(&self) -> String {
        std::fs::read_to_string(self.path().join("violations.log")).unwrap_or_default()
    }

    /// Every request so far validated against the schema.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "schema violations:\n{v}");
    }

    pub fn set_faults(&self, lines: &str) {
        std::fs::write(self.path().join("faults"), lines).unwrap();
    }

    pub fn conf_exists(&self, vmid: u32) -> bool {
        self.path()
            .join(format!("nodes/pve/lxc/{vmid}.conf"))
            .exists()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
