use super::*;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new("/x/config.json"))
}

#[test]
fn full_file_parses() {
    let c = parse(
        r#"{"proxmox":{"host":"pve1","port":8006,"username":"root@pam","password":"pw","node":"pve1",
        "driver":"api","fingerprint":"AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "storage":"local-zfs","token_file":"/etc/nexcage/token"},
        "storage":{"type":"zfs","pool":"rpool","dataset":"rpool/data"},
        "network":{"bridge":"vmbr0","vlan":10},
        "images":{"cache_size":1000,"storage_path":"/srv/nexcage"},
        "api":{"host":"h","port":8006,"username":"root@pam","token_name":"nexcage","token_value":"s3cr3t"},
        "cluster":{"enabled":true,"nodes":["pve1","pve2"]},
        "lxc_path":"/var/lib/lxc","default_disk_size":10,"unprivileged":false,"default_backend":"proxmox",
        "routing":[{"id_regex":"^pod-","backend":"native"},{"annotation":{"key":"k","value":"v"},"backend":"proxmox"}]}"#,
    )
    .unwrap();
    assert_eq!(c.driver(), Driver::Api);
    assert_eq!(c.fingerprint_bytes().unwrap()[0], 0xAA);
    assert_eq!(c.api_token().unwrap().0, "root@pam!nexcage");
    assert_eq!(c.default_backend, Some(Backend::Proxmox));
    assert!(!c.unprivileged());
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"proxmox":{"port":70000}}"#,
            "proxmox.port: must be 1..65535",
        ),
        (
            r#"{"proxmox":{"port":0}}"#,
            "proxmox.port: must be 1..65535",
        ),
        (r#"{"proxmox":{"port":"x"}}"#, "proxmox.port"),
        (r#"{"proxmox":{"driver":"ssh"}}"#, "proxmox.driver"),
        (
            r#"{"proxmox":{"bogus":1}}"#,
            "proxmox.bogus: unknown field `bogus`",
        ),
        (r#"{"bogus":1}"#, "unknown field `bogus`"),
        (
            r#"{"proxmox":{"fingerprint":"abc"}}"#,
            "proxmox.fingerprint: must be a SHA-256",
        ),
        (r#"{"proxmox":{"node":"bad node"}}"#, "proxmox.node"),
        (
            r#"{"proxmox":{"template_storage":"no/such"}}"#,
            "proxmox.template_storage",
        ),
        (
            r#"{"network":{"vlan":5000}}"#,
            "network.vlan: must be 1..4094",
        ),
        (
            r#"{"network":{"custom":{"lab":{"bridge":"vmbr0"}}}}"#,
            "network.custom.lab.subnet",
        ),
        (
            r#"{"network":{"custom":{"lab":{"bridge":"bad br","subnet":"10.0.0.0/24"}}}}"#,
            "network.custom.lab.bridge",
        ),
        (
            r#"{"network":{"custom":{"lab":{"bridge":"vmbr0","subnet":"10.0.0.0/24","vlan":0}}}}"#,
            "network.custom.lab.vlan",
        ),
        (r#"{"storage":{"type":"zfs"}}"#, "storage.pool"),
        (r#"{"storage":{"type":"lvm"}}"#, "storage.type"),
        (r#"{"default_backend":"docker"}"#, "default_backend"),
        (
            r#"{"routing":[{"backend":"native"}]}"#,
            "routing[0]: needs exactly one",
        ),
        (
            r#"{"routing":[{"id_regex":"(","backend":"native"}]}"#,
            "routing[0].id_regex",
        ),
        (
            r#"{"lxc_path":"rel"}"#,
            "lxc_path: must be an absolute path",
        ),
        (r#"{"default_disk_size":0}"#, "default_disk_size"),
        (
            r#"{"proxmox":{"gc_grace":999999999}}"#,
            "proxmox.gc_grace: must be 0..604800 seconds",
        ),
        (r#"{"proxmox":{"gc_grace":-1}}"#, "proxmox.gc_grace"),
        (
            r#"{"proxmox":{"lock_wait":86401}}"#,
            "proxmox.lock_wait: must be 0..86400 seconds",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: got {err}");
    }
}

#[test]
fn secrets_never_in_debug_or_errors() {
    let c = parse(r#"{"proxmox":{"username":"root@pam","password":"topsecret"},"api":{"token_value":"tokval"}}"#).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("topsecret") && !dbg.contains("tokval"),
        "{dbg}"
    );
    // A type error next to a secret must not echo it.
    let err = parse(r#"{"proxmox":{"password":"topsecret","port":"p"}}"#)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("topsecret"), "{err}");
    let err = parse(r#"{"proxmox":{"username":"root@pam","password":987654}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("proxmox.password") && !err.contains("987654"),
        "{err}"
    );
    let v = get_key(&c, "proxmox.password").unwrap();
    assert_eq!(v, serde_json::json!(REDACTED));
}

#[test]
fn missing_default_is_fine_missing_explicit_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let l = load_with_env(None, &env_of(&[])).unwrap();
    // /etc/nexcage/config.json normally does not exist on the build host.
    if l.path.is_none() {
        assert_eq!(l.config, Config::default());
    }
    let missing = dir.path().join("nope.json");
    assert!(matches!(
        load_with_env(Some(&missing), &env_of(&[])),
        Err(ConfigError::Io { .. })
    ));
    let m = missing.to_str().unwrap();
    assert!(load_with_env(None, &env_of(&[("NEXCAGE_CONFIG", m)])).is_err());
}

#[test]
fn explicit_path_beats_env_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, r#"{"proxmox":{"node":"a"}}"#).unwrap();
    std::fs::write(&b, r#"{"proxmox":{"node":"b"}}"#).unwrap();
    let env = env_of(&[
        ("NEXCAGE_CONFIG", b.to_str().unwrap()),
        ("NEXCAGE_STORAGE_PATH", "/data/nx"),
        ("NEXCAGE_LOG_LEVEL", "debug"),
    ]);
    let l = load_with_env(Some(&a), &env).unwrap();
    assert_eq!(l.config.proxmox.node.as_deref(), Some("a"));
    assert_eq!(l.config.data_dir(), Path::new("/data/nx"));
    assert_eq!(l.log_level.as_deref(), Some("debug"));
    let l = load_with_env(None, &env).unwrap();
    assert_eq!(l.config.proxmox.node.as_deref(), Some("b"));
}

#[test]
fn world_readable_secret_warns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.json");
    std::fs::write(
        &p,
        r#"{"proxmox":{"username":"root@pam","password":"pw12345"}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let l = load_with_env(Some(&p), &env_of(&[])).unwrap();
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].contains("proxmox.password") && !l.warnings[0].contains("pw12345"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load_with_env(Some(&p), &env_of(&[]))
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn token_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tok");
    std::fs::write(&p, "root@pam!nx=abc-123\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (id, s, w) = read_token_file(&p).unwrap();
    assert_eq!(
        (id.as_str(), s.expose(), w.len()),
        ("root@pam!nx", "abc-123", 0)
    );
    std::fs::write(&p, "garbage").unwrap();
    let err = read_token_file(&p).unwrap_err().to_string();
    assert!(err.contains("proxmox.token_file") && !err.contains("garbage"));
}

#[test]
fn set_validates_and_writes_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("etc/config.json");
    set_key(&p, "proxmox.port", parse_value("8007")).unwrap();
    set_key(&p, "proxmox.node", parse_value("pve1")).unwrap();
    let err = set_key(&p, "proxmox.port", parse_value("99999"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("proxmox.port: must be 1..65535"), "{err}");
    let err = set_key(&p, "proxmox.nope", parse_value("1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    let l = load_with_env(Some(&p), &env_of(&[])).unwrap();
    assert_eq!(l.config.api_port(), 8007);
    assert_eq!(
        get_key(&l.config, "proxmox.node").unwrap(),
        serde_json::json!("pve1")
    );
    assert!(get_key(&l.config, "proxmox.zzz").is_err());
    let mode = std::fs::metadata(&p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
}

#[test]
fn lock_wait_defaults_to_a_minute() {
    assert_eq!(parse("{}").unwrap().lock_wait(), std::time::Duration::from_secs(60));
    let c = parse(r#"{"proxmox":{"lock_wait":0}}"#).unwrap();
    assert_eq!(c.lock_wait(), std::time::Duration::ZERO);
}

#[test]
fn gc_grace_defaults_to_a_minute() {
    assert_eq!(parse("{}").unwrap().gc_grace(), std::time::Duration::from_secs(60));
    let c = parse(r#"{"proxmox":{"gc_grace":2}}"#).unwrap();
    assert_eq!(c.gc_grace(), std::time::Duration::from_secs(2));
}

#[test]
fn template_storage_defaults_to_local() {
    let c = crate::parse_str("{}", "x".as_ref()).unwrap();
    assert_eq!(c.proxmox.template_storage(), "local");
    let c = crate::parse_str(
        r#"{"proxmox":{"template_storage":"tmpl-nfs"}}"#,
        "x".as_ref(),
    )
    .unwrap();
    assert_eq!(c.proxmox.template_storage(), "tmpl-nfs");
}
