//! Create on the node it meets (issue 12, Must show 6): a `nexcage run`
//! against a double playing PVE 8.4 and 9.1, with each driver, with and
//! without the empty template already on the template storage; a release
//! too old fails naming the version required (PROXMOX-FACTS §10).

mod proxmox_support;
use proxmox_support::*;
use std::path::PathBuf;

fn templates(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.dir.join("state/storage/local/vztmpl"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn clear_templates(env: &Env) {
    let _ = std::fs::remove_dir_all(env.dir.join("state/storage/local/vztmpl"));
    std::fs::create_dir_all(env.dir.join("state/storage/local/vztmpl")).expect("vztmpl dir");
}

/// nexcage's per-node cache files (in the environment's data dir).
fn node_caches(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(env.dir.join("data"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("proxmox-node-"))
        .map(|e| e.path())
        .collect()
}

/// nexcage's per-node cache: removed so the next create asks the node again.
fn forget_node(env: &Env) {
    for p in node_caches(env) {
        std::fs::remove_file(p).expect("remove cache");
    }
}

fn run_ok(env: &Env, b: &std::path::Path, id: &str) {
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), id]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", out(&o));
}

fn template_path(env: &Env, name: &str) -> PathBuf {
    env.dir.join("state/storage/local/vztmpl").join(name)
}

fn plays(version: &str, driver: &str) {
    let name = format!("nodever{}", version.replace('.', ""));
    let env = env_or_skip!(&name, driver);
    std::fs::write(env.dir.join("state/version"), format!("{version}\n")).expect("version file");
    let (want, gz) = if version.starts_with("8.") { ("nexcage-empty.tar.gz", true) } else { ("nexcage-empty.tar", false) };
    let b = env.bundle("hi", &["echo", "hi"], |_| {});

    // Without the template: create puts it there, once, in the node's format.
    clear_templates(&env);
    run_ok(&env, &b, "t1");
    assert_eq!(templates(&env), [want], "{version} {driver}");
    let data = std::fs::read(template_path(&env, want)).expect("template");
    assert_eq!(data.starts_with(&[0x1f, 0x8b]), gz, "{want} gzip or plain");
    let stamp = std::fs::metadata(template_path(&env, want)).and_then(|m| m.modified()).expect("mtime");
    run_ok(&env, &b, "t2");

    // With the template already on the node (nexcage asks it again).
    forget_node(&env);
    run_ok(&env, &b, "t3");
    assert_eq!(templates(&env), [want]);
    let again = std::fs::metadata(template_path(&env, want)).and_then(|m| m.modified()).expect("mtime");
    assert_eq!(stamp, again, "the template is made once");
    env.assert_clean(&format!("{version} {driver}"));
    if driver == "pct" {
        let calls = std::fs::read_to_string(env.dir.join("cli-calls.log")).unwrap_or_default();
        assert!(calls.lines().any(|l| l.starts_with("pveversion -v")), "pct driver reads pveversion -v: {calls}");
    }
}

#[test]
fn pve84_pct() {
    plays("8.4.1", "pct");
}

#[test]
fn pve84_api() {
    plays("8.4.1", "api");
}

#[test]
fn pve91_pct() {
    plays("9.1.2", "pct");
}

#[test]
fn pve91_api() {
    plays("9.1.2", "api");
}

/// A release older than 8.0: one error naming the version required, nothing left.
#[test]
fn too_old_names_the_version() {
    for driver in ["pct", "api"] {
        let env = env_or_skip!("nodever74", driver);
        std::fs::write(env.dir.join("state/version"), "7.4.17\n").expect("version file");
        let b = env.bundle("hi", &["echo", "hi"], |_| {});
        let o = env.nx(&["run", "-b", b.to_str().unwrap(), "old"]);
        assert_ne!(o.status.code(), Some(0), "{}", out(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("Proxmox VE 7.4.17 is not supported: nexcage needs pve-manager 8.0 or newer"), "{}", out(&o));
        env.assert_clean("too old");
    }
}

/// A token lacking a privilege: create fails naming it, before anything is
/// made; `system check` prints one fail line per missing privilege.
#[test]
fn token_lacking_a_privilege() {
    let env = env_or_skip!("nodeprivs", "api");
    std::fs::write(env.dir.join("state/privileges-missing"), "VM.Allocate\nDatastore.AllocateTemplate\n").expect("privileges file");
    clear_templates(&env);
    let b = env.bundle("hi", &["echo", "hi"], |_| {});
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "np"]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lacks privileges nexcage needs: VM.Allocate on /vms (for create and delete); Datastore.AllocateTemplate on /storage/local (for create (uploads the empty template))"),
        "{}",
        out(&o)
    );
    assert!(templates(&env).is_empty(), "nothing uploaded");
    let o = env.nx(&["system", "check"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("fail proxmox privilege:")).collect();
    assert_eq!(fails.len(), 2, "{text}");
    assert!(fails[0].contains("missing VM.Allocate on /vms") && fails[0].contains("(hint: pveum acl modify /vms"), "{text}");
    assert!(text.contains("ok   proxmox versions: "), "{text}");
    env.assert_clean("privileges");
}

/// The operator removes the template while nexcage's cache (in the data
/// dir, not the state root) still names it: the node's create dies "can't
/// find file" (PROXMOX-FACTS §10); nexcage drops the cache, puts the
/// template back and creates once more, so the run succeeds.
fn template_removed(driver: &str) {
    let env = env_or_skip!("nodetmplgone", driver);
    let b = env.bundle("hi", &["echo", "hi"], |_| {});
    run_ok(&env, &b, "g1");
    assert_eq!(node_caches(&env).len(), 1, "one cache file in the data dir");
    clear_templates(&env);
    run_ok(&env, &b, "g2");
    assert_eq!(templates(&env), ["nexcage-empty.tar"], "put back");
    let calls = std::fs::read_to_string(env.dir.join("cli-calls.log")).unwrap_or_default();
    if driver == "pct" {
        assert_eq!(calls.lines().filter(|l| l.starts_with("pct create ")).count(), 3, "one retry: {calls}");
    }
    env.assert_clean("template removed");
}

#[test]
fn template_removed_pct() {
    template_removed("pct");
}

#[test]
fn template_removed_api() {
    template_removed("api");
}

/// The API driver registers `env`, which PVE renders as
/// `lxc.environment.runtime` lines (PROXMOX-FACTS §2 item 22); LXC before 6
/// cannot parse them, so on such a host the env is kept in nexcage's own
/// LXC config only: after PVE regenerated the guest's `config` (a `pct
/// set`), LXC still loads it and the process gets its environment.
#[test]
fn env_with_the_api_driver_survives_regeneration() {
    let env = env_or_skip!("nodeenv", "api");
    let b = env.bundle("env", &["sh", "-c", "echo \"$FOO\" > /tmp/envout; exec sleep 1000"], |v| {
        v["process"]["env"].as_array_mut().expect("env").push("FOO=from-the-bundle".into());
        v["root"]["readonly"] = false.into();
    });
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "e1"]);
    assert!(o.status.success(), "{}", out(&o));
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(env.root.join("e1/proxmox.json")).unwrap()).unwrap();
    let vmid = j["vmid"].as_u64().unwrap().to_string();
    let o = env.cmd("pct").args(["set", &vmid, "--memory", "256"]).output().unwrap();
    assert!(o.status.success(), "pct set: {}", out(&o));
    let lxc = env.dir.join("lxc");
    let o = std::process::Command::new("lxc-info").args(["-n", &vmid, "-c", "lxc.uts.name", "-P"]).arg(&lxc).output().unwrap();
    let cfg = std::fs::read_to_string(lxc.join(&vmid).join("config")).unwrap_or_default();
    assert!(o.status.success(), "LXC cannot load PVE's regenerated config: {}\n{cfg}", out(&o));
    let o = env.nx(&["start", "e1"]);
    assert!(o.status.success(), "start: {}", out(&o));
    assert!(wait_until(10, || env.nx(&["exec", "e1", "cat", "/tmp/envout"]).stdout == b"from-the-bundle\n"), "{}", out(&env.nx(&["exec", "e1", "cat", "/tmp/envout"])));
    let o = env.nx(&["delete", "-f", "e1"]);
    assert!(o.status.success(), "{}", out(&o));
    env.assert_clean("env");
}
