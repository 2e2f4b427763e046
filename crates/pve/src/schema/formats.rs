//! Named string formats of the schema (pve-common JSONSchema.pm
//! `register_format`). Formats not listed here are accepted: they belong
//! to storage/cluster calls nexcage does not make.

// regex-lite: the named formats' classes are spelled out in ASCII, and a
// pattern compiles in microseconds (nexcage checks formats in every
// create). Its `(?i)` folds ASCII only, where Perl's would also fold e.g.
// the Kelvin sign into `k`: no Proxmox id holds one.
use regex_lite::Regex;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, OnceLock};

/// Whether `v` matches the format pattern `p`, each pattern compiled once
/// per process: compiling them per value (a case-insensitive one builds
/// Unicode case tables) cost the pve-double ~10 ms per guest create.
fn re(p: &'static str, v: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Option<Regex>>>> = OnceLock::new();
    let Ok(mut cache) = CACHE.get_or_init(Default::default).lock() else { return false };
    cache.entry(p).or_insert_with(|| Regex::new(p).ok()).as_ref().is_some_and(|r| r.is_match(v))
}

fn list(v: &str) -> Vec<&str> {
    v.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect()
}

const NODE: &str = r"^(?i:[a-z0-9]([a-z0-9\-]*[a-z0-9])?)$";
const STORAGE_ID: &str = r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$";
const CONFIGID: &str = r"^(?i:[a-z][a-z0-9_-]+)$";
const DNS_NAME: &str =
    r"^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?)$";
const TAG: &str = r"^(?i:[a-z0-9_][a-z0-9_\-+.]*)$";

fn cidr4(v: &str) -> bool {
    v.split_once('/').is_some_and(|(a, m)| {
        a.parse::<Ipv4Addr>().is_ok() && m.parse::<u8>().is_ok_and(|m| m <= 32)
    })
}

fn cidr6(v: &str) -> bool {
    v.split_once('/').is_some_and(|(a, m)| {
        a.parse::<Ipv6Addr>().is_ok() && m.parse::<u8>().is_ok_and(|m| m <= 128)
    })
}

/// pve-container `verify_lxc_mp_string`: no `.`/`..` path components.
fn mp_string_ok(v: &str) -> bool {
    !(v.contains("/./")
        || v.contains("/../")
        || v.ends_with("/.")
        || v.ends_with("/..")
        || v.starts_with("../"))
}

pub fn check(format: &str, v: &str) -> Result<(), String> {
    let ok = match format {
        "pve-vmid" => {
            if !re(r"^[1-9][0-9]{2,8}$", v) {
                return Err("value does not look like a valid VM ID".into());
            }
            true
        }
        "pve-node" => re(NODE, v),
        "pve-node-list" => list(v).iter().all(|n| re(NODE, n)),
        "pve-storage-id" => re(STORAGE_ID, v),
        "pve-configid" => re(CONFIGID, v),
        "pve-configid-list" => !list(v).is_empty() && list(v).iter().all(|n| re(CONFIGID, n)),
        "dns-name" => re(DNS_NAME, v),
        "dns-name-list" => list(v).iter().all(|n| re(DNS_NAME, n)),
        "pve-tag-list" => !list(v).is_empty() && list(v).iter().all(|t| re(TAG, t)),
        "pve-lxc-mp-string" => {
            if !mp_string_ok(v) {
                return Err(format!("{v} contains illegal character sequences"));
            }
            true
        }
        "pve-lxc-dev-string" => v.starts_with("/dev/") && mp_string_ok(v),
        "disk-size" => re(r"^\d+(\.\d+)?[KMGT]?$", v),
        "mac-addr" => re(r"^(?i:[a-f0-9][02468ace](?::[a-f0-9]{2}){5})$", v),
        "ipv4" => v.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => v.parse::<Ipv6Addr>().is_ok(),
        "pve-ipv4-config" => v == "dhcp" || v == "manual" || cidr4(v),
        "pve-ipv6-config" => v == "auto" || v == "dhcp" || v == "manual" || cidr6(v),
        "pve-volume-id" => re(r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):.+$", v),
        "pve-startup-order" => v
            .split(',')
            .all(|p| re(r"^((order=)?\d+|up=\d+|down=\d+)$", p)),
        "pve-ct-timezone" => v == "host" || re(r"^[A-Za-z0-9_+\-/]+$", v),
        "pve-poolid" => re(r"^[A-Za-z0-9_\-]+$", v),
        "pve-realm" => re(r"^[A-Za-z][A-Za-z0-9.\-_]+$", v),
        "lxc-ip-with-ll-iface-list" => list(v).iter().all(|a| {
            let a = a.split('%').next().unwrap_or(a);
            a.parse::<Ipv4Addr>().is_ok() || a.parse::<Ipv6Addr>().is_ok()
        }),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("value does not match format '{format}'"))
    }
}
