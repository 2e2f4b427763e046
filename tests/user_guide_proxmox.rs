//! The user guide's container commands on the Proxmox backend (the pct
//! driver, the pve-double control plane, real LXC and zfs-fuse), through
//! the real binary, each checked for its effect. The commands are the
//! guide's, as in tests/fixtures/user-guide-commands (checked here), with
//! the adaptations tests/user_guide.rs makes: a local bundle for the image,
//! container names with this process's id.

mod proxmox_support;
use proxmox_support::*;

use std::process::{Output, Stdio};

const GUIDE: &str = include_str!("fixtures/user-guide-commands");

struct Run<'a> {
    env: &'a Env,
    subs: Vec<(String, String)>,
}

impl Run<'_> {
    fn nx(&self, args: &[String]) -> Output {
        let store = self.env.dir.join("store");
        self.env.cmd(nexcage()).env("NEXCAGE_STORAGE_PATH", store).arg("--root").arg(&self.env.root).args(args)
            .stdin(Stdio::null()).output().expect("run nexcage")
    }

    /// Guide command `g` (which must be in the guide's blocks), adapted; must succeed.
    fn ok(&self, g: &str) -> String {
        let flat = GUIDE.replace("\\\n", " ");
        let flat: String = flat.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(g), "not a command of the guide: {g}");
        let mut s = format!(" {g} ");
        for (a, b) in &self.subs {
            s = s.replace(&format!(" {a} "), &format!(" {b} "));
        }
        let args: Vec<String> = s.split_whitespace().skip(1).map(String::from).collect();
        let o = self.nx(&args);
        eprintln!("$ nexcage {}\n{}{}", args.join(" "), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{g}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn extra(&self, args: &[&str]) -> String {
        let o = self.nx(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.extra(args)).expect("json")
    }

    fn wait_status(&self, id: &str, want: &str) {
        let ok = wait_until(30, || self.json(&["state", id])["status"] == want);
        assert!(ok, "{id} did not become {want}: {}", self.json(&["state", id]));
    }
}

#[test]
fn user_guide_containers_on_proxmox() {
    let env = env_or_skip!("guide-px", "pct");
    let pid = std::process::id();
    let b = env.bundle("guide", &["sh", "-c", "trap 'exit 0' TERM; echo hello guide; while true; do sleep 1; done"], |_| {});
    let mc = format!("my-container-{pid}");
    let run = Run {
        env: &env,
        subs: vec![
            ("/path/to/oci-bundle".into(), b.display().to_string()),
            ("ubuntu:22.04".into(), b.display().to_string()),
            ("my-container".into(), mc.clone()),
        ],
    };

    run.ok("nexcage create --name my-container --image /path/to/oci-bundle");
    let info = run.json(&["info", "--format", "json", &mc]);
    assert_eq!(info["backend"], "proxmox", "{info}");
    let vmid = info["vmid"].as_u64().unwrap_or_else(|| panic!("no vmid: {info}")) as u32;
    assert_eq!(env.guests(), vec![vmid]);
    run.ok("nexcage start my-container");
    run.wait_status(&mc, "running");
    let st: serde_json::Value = serde_json::from_str(&run.ok("nexcage state --name my-container")).unwrap();
    assert_eq!(st["status"], "running");
    assert!(wait_until(15, || run.extra(&["logs", &mc]).contains("hello guide")));
    run.ok("nexcage kill --name my-container --signal SIGTERM");
    run.wait_status(&mc, "stopped");
    run.ok("nexcage start my-container --detach --interactive");
    run.wait_status(&mc, "running");

    let ls = run.ok("nexcage exec my-container ls -la");
    assert!(ls.contains("bin"), "{ls}");
    assert_eq!(run.ok("nexcage exec my-container --user root whoami").trim(), "root");
    assert!(run.ok("nexcage logs my-container").contains("hello guide"));
    assert!(run.ok("nexcage logs my-container --timestamps").lines().all(|l| l.starts_with("20")));
    assert!(run.ok("nexcage logs my-container --tail 100").contains("hello guide"));
    assert!(run.ok("nexcage info my-container").contains(&vmid.to_string()));
    let list = run.ok("nexcage list --status running");
    assert!(list.contains(&mc) && list.contains(&vmid.to_string()), "{list}");
    let lj: serde_json::Value = serde_json::from_str(&run.ok("nexcage list --format json")).unwrap();
    assert!(lj.as_array().unwrap().iter().any(|c| c["vmid"] == vmid), "{lj}");

    run.ok("nexcage stop my-container");
    run.wait_status(&mc, "stopped");
    run.extra(&["start", &mc]);
    run.wait_status(&mc, "running");
    run.ok("nexcage stop my-container --force");
    run.wait_status(&mc, "stopped");
    run.extra(&["delete", &mc]);
    assert!(env.guests().is_empty(), "delete left guests: {:?}", env.guests());

    // Resource limits: in the guest's Proxmox config.
    run.ok("nexcage create --name my-container --image ubuntu:22.04 --memory 1024 --memory-swap 2048");
    let vmid = run.json(&["info", "--format", "json", &mc])["vmid"].as_u64().expect("vmid");
    let o = env.cmd("pct").arg("config").arg(vmid.to_string()).output().expect("pct config");
    let conf = String::from_utf8_lossy(&o.stdout);
    assert!(conf.lines().any(|l| l == "memory: 1024"), "{conf}");
    run.extra(&["delete", "--force", &mc]);
    assert!(env.guests().is_empty(), "delete left guests: {:?}", env.guests());

    // The node commands see the double's Proxmox node and the test pool.
    let sr = run.ok("nexcage system resources");
    assert!(sr.contains("proxmox:  node ") && sr.contains("pve-manager") && sr.contains(&format!("zfs:      {} ONLINE", env.pool)), "{sr}");
    let nt = run.nx(&["network".into(), "test".into()]);
    let nt = String::from_utf8_lossy(&nt.stdout).into_owned();
    assert!(nt.lines().any(|l| l.starts_with("ok   proxmox: pve-manager")), "{nt}");
    // A benchmark with the configured backend: Proxmox guests (a bundle of
    // this test's: the default one borrows the host's /usr, which a guest
    // cannot).
    let tb = env.bundle("bench", &["true"], |_| {});
    let bench = run.extra(&["performance", "benchmark", "--cycles", "2", "--bundle", tb.to_str().unwrap()]);
    assert!(bench.lines().any(|l| l.starts_with("cycle")), "{bench}");
    assert!(env.guests().is_empty(), "the benchmark left guests: {:?}", env.guests());
}
