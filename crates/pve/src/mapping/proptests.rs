//! Property tests: whatever the mapping produces validates against the
//! official schema (as `POST /nodes/{node}/lxc` and `PUT .../config`) and
//! survives a config-file round trip.

use super::tests::{base, opts};
use super::*;
use crate::schema::tests::schema;
use proptest::prelude::*;
use serde_json::json;

fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        r"[a-zA-Z0-9/_.=-]{1,12}",
        r"[ -~]{0,12}",
        r"[\t a-z'\x22$]{0,8}",
        "\\PC{0,6}"
    ]
}

prop_compose! {
    fn spec()(
        limit in prop_oneof![Just(None), (16i64..65536).prop_map(|m| Some(m * 1024 * 1024 + 1)), Just(Some(-1))],
        extra_swap in proptest::option::of(0i64..1 << 34),
        quota in proptest::option::of(1000i64..2_000_000),
        period in proptest::option::of(1000u64..1_000_000),
        shares in proptest::option::of(2u64..=262144),
        cpus in proptest::option::of((0u32..64, 0u32..8).prop_map(|(a, n)| format!("{a}-{}", a + n))),
        args in proptest::collection::vec(arg(), 1..4),
        env in proptest::collection::vec((r"[A-Za-z_][A-Za-z0-9_]{0,8}", r"[ -~]{0,10}"), 0..4),
        host in proptest::option::of(r"[a-z][a-z0-9-]{0,10}[a-z0-9]"),
        binds in proptest::collection::vec((r"/[a-z]{1,8}", r"/[a-z]{1,8}", any::<bool>()), 0..3),
        ann in proptest::collection::btree_map(r"[a-z.]{1,10}", r"\PC{0,20}", 0..4),
    ) -> serde_json::Value {
        let mut v = base();
        let mut mem = json!({});
        if let Some(l) = limit {
            mem["limit"] = json!(l);
            if let (Some(s), true) = (extra_swap, l > 0) { mem["swap"] = json!(l + s); }
        }
        let mut cpu = json!({});
        if let Some(q) = quota { cpu["quota"] = json!(q); }
        if let Some(p) = period { cpu["period"] = json!(p); }
        if let Some(s) = shares { cpu["shares"] = json!(s); }
        if let Some(c) = cpus { cpu["cpus"] = json!(c); }
        v["linux"]["resources"] = json!({"memory": mem, "cpu": cpu});
        v["process"]["args"] = json!(args);
        v["process"]["env"] = json!(env.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>());
        if let Some(h) = host { v["hostname"] = json!(h); }
        let mut mounts = v["mounts"].as_array().cloned().unwrap_or_default();
        for (s, d, ro) in binds {
            let mut o = vec!["rbind"];
            if ro { o.push("ro"); }
            mounts.push(json!({"destination": format!("/mnt{d}"), "type": "bind", "source": s, "options": o}));
        }
        v["mounts"] = json!(mounts);
        v["annotations"] = json!(ann);
        v
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn mapped_configs_validate_against_schema(v in spec()) {
        let s = schema();
        match map_value(&v, &opts()) {
            Ok(c) => {
                let mut p = c.api_params();
                p.insert("node".into(), "pve".into());
                p.insert("vmid".into(), "100".into());
                let mut create = p.clone();
                create.insert("ostemplate".into(), "local:vztmpl/nexcage.tar".into());
                if let Err(e) = s.validate("POST", "/nodes/{node}/lxc", &create) {
                    return Err(TestCaseError::fail(format!("create: {e}\n{p:?}")));
                }
                p.remove("rootfs");
                p.remove("unprivileged"); // read-only after create
                if let Err(e) = s.validate("PUT", "/nodes/{node}/lxc/{vmid}/config", &p) {
                    return Err(TestCaseError::fail(format!("set: {e}")));
                }
                for (k, _) in &c.lxc {
                    prop_assert!(allowed_raw_key(k), "{}", k);
                }
                let file = crate::conffile::ConfigFile { main: c.to_section(), ..Default::default() };
                let (back, warnings) = crate::conffile::parse(&crate::conffile::write(&file));
                prop_assert!(warnings.is_empty(), "{:?}", warnings);
                prop_assert_eq!(&back.main.keys, &c.to_section().keys);
                prop_assert_eq!(&back.main.lxc, &c.lxc);
            }
            Err(e) => {
                // Refusals must name an OCI field.
                prop_assert!(!e.field.is_empty());
            }
        }
    }
}
