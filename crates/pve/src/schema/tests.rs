use super::*;

pub(crate) fn schema() -> &'static Schema {
    static S: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schema/pve-api-subset.json");
        Schema::load(&p).expect("schema file crates/pve/schema/pve-api-subset.json")
    })
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CREATE: &str = "/nodes/{node}/lxc";

fn create(extra: &[(&str, &str)]) -> Result<(), Violations> {
    let mut p = params(&[
        ("node", "pve"),
        ("vmid", "100"),
        ("ostemplate", "local:vztmpl/x.tar"),
    ]);
    p.extend(params(extra));
    schema().validate("POST", CREATE, &p)
}

#[test]
fn routes_concrete_paths() {
    let s = schema();
    let r = s.route("/nodes/pve1/lxc/100/status/start").unwrap();
    assert_eq!(r.template, "/nodes/{node}/lxc/{vmid}/status/start");
    assert_eq!(r.params["vmid"], "100");
    assert!(s.route("/nodes/pve1/qemu").is_none());
}

#[test]
fn accepts_a_good_create() {
    create(&[
        ("memory", "64"),
        ("swap", "0"),
        ("cpulimit", "0.5"),
        ("net0", "name=eth0,bridge=vmbr0,ip=dhcp,type=veth"),
        ("net31", "name=eth1,bridge=vmbr0,tag=10"),
        ("mp0", "/srv/data,mp=/data,ro=1"),
        ("mp255", "local-zfs:4,mp=/x"),
        ("rootfs", "local-zfs:subvol-100-disk-0,size=8G"),
        ("features", "nesting=1,keyctl=1"),
        ("tags", "nexcage;web"),
        ("hostname", "web-1.example"),
        ("unprivileged", "1"),
        ("env", "A=1\0B=two words"),
        ("entrypoint", "/bin/sh -c 'echo hi'"),
        ("ostype", "unmanaged"),
    ])
    .unwrap();
}

type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn rejects_what_proxmox_rejects() {
    let cases: &[Case] = &[
        (
            &[("memory", "8")],
            "memory",
            "value must have a minimum value of 16",
        ),
        (
            &[("memory", "1.5")],
            "memory",
            "type check ('integer') failed",
        ),
        (
            &[("bogus", "1")],
            "bogus",
            "property is not defined in schema",
        ),
        (
            &[("net0", "name=eth0,bridgee=vmbr0")],
            "net0",
            "invalid key in comma-separated list property: bridgee",
        ),
        (
            &[("net0", "bridge=vmbr0")],
            "net0.name",
            "property is missing and it is not optional",
        ),
        (
            &[("net0", "name=eth0,tag=5000")],
            "net0.tag",
            "maximum value of 4094",
        ),
        (
            &[("net32", "name=eth0")],
            "net32",
            "property is not defined",
        ),
        (&[("mp256", "/a,mp=/b")], "mp256", "property is not defined"),
        (
            &[("mp0", "/a/../b,mp=/b")],
            "mp0.volume",
            "illegal character sequences",
        ),
        (&[("mp0", "/a")], "mp0.mp", "property is missing"),
        (&[("arch", "sparc")], "arch", "enumeration"),
        (
            &[("unprivileged", "maybe")],
            "unprivileged",
            "type check ('boolean')",
        ),
        (&[("hostname", "bad_name")], "hostname", "invalid format"),
        (&[("tags", "Bad Tag!")], "tags", "invalid format"),
        (&[("cpulimit", "9000")], "cpulimit", "maximum value of 8192"),
        (&[("env", "1BAD")], "env", "regex pattern"),
        (
            &[("net0", "name=eth0,hwaddr=01:00:00:00:00:00")],
            "net0.hwaddr",
            "invalid format",
        ),
        (
            &[("rootfs", "local-zfs:8,size=lots")],
            "rootfs.size",
            "invalid format",
        ),
    ];
    for (extra, key, msg) in cases {
        let v = create(extra).expect_err(&format!("{extra:?} should fail"));
        let got =
            v.0.get(*key)
                .unwrap_or_else(|| panic!("{extra:?}: no error for {key}: {v}"));
        assert!(got.contains(msg), "{extra:?}: {key}: {got}");
    }
}

#[test]
fn missing_required_and_bad_vmid() {
    let s = schema();
    let v = s
        .validate("POST", CREATE, &params(&[("node", "pve")]))
        .unwrap_err();
    assert_eq!(v.0["vmid"], "property is missing and it is not optional");
    assert_eq!(
        v.0["ostemplate"],
        "property is missing and it is not optional"
    );
    let v = s
        .validate("GET", "/cluster/nextid", &params(&[("vmid", "99")]))
        .unwrap_err();
    assert!(v.0["vmid"].contains("minimum value of 100"));
    let v = s
        .validate("GET", "/cluster/nextid", &params(&[("vmid", "0100")]))
        .unwrap_err();
    assert!(v.0["vmid"].contains("valid VM ID"), "{v}");
    let v = s.validate(
        "PUT",
        "/nodes/{node}/lxc/{vmid}/config",
        &params(&[("node", "pve"), ("vmid", "100"), ("delete", "memory,1bad")]),
    );
    assert!(v.unwrap_err().0.contains_key("delete"));
}

#[test]
fn property_string_printing_order() {
    let s = schema();
    let ep = s.endpoint("POST", CREATE).unwrap();
    let fmt = ep
        .pointer("/parameters/properties/mp[n]/format")
        .unwrap()
        .as_object()
        .unwrap();
    let vals = parse_property_string(fmt, "ro=1,mp=/data,/srv").unwrap();
    assert_eq!(print_property_string(fmt, &vals), "/srv,mp=/data,ro=1");
}

/// Every `pattern` of the schema compiles (after the Perl-to-Rust
/// rewrite), and classes are Unicode-aware, as Perl's are on the API's
/// parameters (pve-http-server decodes them as UTF-8).
#[test]
fn every_schema_pattern_compiles() {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(p)) = m.get("pattern") {
                    out.push(p.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/pve-api-subset.json")).expect("schema file");
    let mut patterns = Vec::new();
    walk(&serde_json::from_str(&text).expect("schema json"), &mut patterns);
    assert!(patterns.len() > 10, "{patterns:?}");
    for p in &patterns {
        if let Err(e) = schema().regex(p) {
            panic!("{p}: {e}");
        }
    }
    let bridge = schema().regex(r"[-_.\w\d]+").expect("bridge pattern");
    assert!(bridge.is_match("vmbr0"));
    assert!(bridge.is_match("vmbr\u{e9}"), "\\w is Unicode-aware");
    let env = schema().regex(r"(?^:(?:\w+=[^\x00-\x08\x10-\x1F\x7F]*)(?:\0\w+=[^\x00-\x08\x10-\x1F\x7F]*)*)").expect("env pattern");
    assert!(env.is_match("\u{c9}T\u{c9}=1\0B=x y"), "env names as the mapping accepts them");
}
