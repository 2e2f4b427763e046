//! A guest's `netN` keys rendered as the `lxc.net.N.*` lines PVE's
//! `update_lxc_config` writes for them (PROXMOX-FACTS section 2 item 21,
//! section 10): a veth whose guest end is `name=` (e.g. `eth0`) and whose
//! host end is `veth<vmid>i<N>`, with `hwaddr`, `mtu`, and the address
//! configured inside the guest by LXC before its init runs.
//!
//! Where PVE's `lxcnetaddbr` script exists (a real node) it is the
//! `script.up`, exactly as PVE renders it: it puts the host end on the
//! bridge, or on the `fwbr<vmid>i<N>` firewall bridge for `firewall=1`,
//! with the `tag`. Elsewhere the `script.up` is a shell line doing the
//! same with `ip`/`bridge` (netlink; LXC's own `link` checks the bridge
//! in /sys, which shows the namespace sysfs was mounted in, not the
//! monitor's); `firewall=1` then names `fwbr<vmid>i<N>`, so the start
//! fails unless that firewall bridge exists (never an unfirewalled guest).
//!
//! Static `ip=`/`gw=` (and `ip6=`/`gw6=`) become `ipv4.address`,
//! `ipv4.gateway`, ... and the link is brought up: what PVE renders for
//! `host-managed=1`, which it turns on for every OCI application
//! container (section 9). `ip=dhcp` leaves the address to the image (no
//! DHCP client is run for the guest).

use std::collections::BTreeMap;
use std::path::Path;

/// PVE's bridge hook (pve-container), present on a real node.
pub const LXCNETADDBR: &str = "/usr/share/lxc/lxcnetaddbr";

/// `netN` keys by N, in PVE's lexical key order.
fn nets(keys: &BTreeMap<String, String>) -> Vec<(u32, BTreeMap<&str, &str>)> {
    keys.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("net")?.parse::<u32>().ok()?, v)))
        .map(|(n, v)| (n, v.split(',').filter_map(|p| p.split_once('=')).collect()))
        .collect()
}

/// The `script.up` that puts the host end on `bridge` (LXC runs it
/// through `sh -c` with `<name> net up veth <host end>` appended, so the
/// inner script's `$4` is the host end; hook version 0 sets no
/// `LXC_NET_PEER`), untagged member of VLAN `tag` if any;
/// `None` for a bridge name that is not a plain interface name.
fn addbr_line(bridge: &str, tag: Option<u16>) -> Option<String> {
    if !crate::network::option::valid_ifname(bridge) {
        return None;
    }
    let mut cmds = format!("ip link set dev \"$4\" master {bridge}");
    if let Some(t) = tag {
        cmds.push_str(&format!(" && bridge vlan del dev \"$4\" vid 1 && bridge vlan add dev \"$4\" vid {t} pvid untagged"));
    }
    cmds.push_str(" && ip link set dev \"$4\" up");
    Some(format!("/bin/sh -c '{cmds}'"))
}

/// The host end's name: `veth<vmid>i<N>`.
pub fn host_ifname(vmid: u32, n: u32) -> String {
    format!("veth{vmid}i{n}")
}

/// The `lxc.net.N.*` lines for every `netN` of `keys` (guest `vmid`).
pub fn render(vmid: u32, keys: &BTreeMap<String, String>, have_addbr: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, o) in nets(keys) {
        let mut put = |k: &str, v: &str| out.push((format!("lxc.net.{n}.{k}"), v.to_string()));
        put("type", "veth");
        put("veth.pair", &host_ifname(vmid, n));
        if let Some(h) = o.get("hwaddr") {
            put("hwaddr", h);
        }
        if let Some(name) = o.get("name") {
            put("name", name);
        }
        if let Some(m) = o.get("mtu") {
            put("mtu", m);
        }
        if have_addbr {
            put("script.up", LXCNETADDBR);
        } else if let Some(b) = o.get("bridge") {
            let b = if o.get("firewall").is_some_and(|f| *f == "1") { format!("fwbr{vmid}i{n}") } else { b.to_string() };
            let tag = o.get("tag").and_then(|t| t.parse::<u16>().ok());
            if let Some(up) = addbr_line(&b, tag) {
                put("script.up", &up);
            }
        }
        for (ip, gw, fam) in [("ip", "gw", "ipv4"), ("ip6", "gw6", "ipv6")] {
            if let Some(a) = o.get(ip).filter(|a| a.contains('/')) {
                put(&format!("{fam}.address"), a);
                if let Some(g) = o.get(gw) {
                    put(&format!("{fam}.gateway"), g);
                }
            }
        }
        if o.get("link_down").is_none_or(|d| *d != "1") {
            put("flags", "up");
        }
    }
    out
}

/// Whether this host has PVE's bridge hook.
pub fn have_addbr() -> bool {
    Path::new(LXCNETADDBR).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(keys: &[(&str, &str)], addbr: bool) -> Vec<String> {
        let keys: BTreeMap<String, String> = keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        render(100, &keys, addbr).into_iter().map(|(k, v)| format!("{k} = {v}")).collect()
    }

    /// (guest keys, lxcnetaddbr present, expected lines)
    type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a [&'a str]);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            // No netN: nothing (lxcconf renders type=empty then).
            (&[("hostname", "web")], false, &[]),
            // The guide's example, static address, on a plain host.
            (&[("net0", "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:0A,ip=10.88.0.10/24,gw=10.88.0.1,type=veth")], false, &[
                "lxc.net.0.type = veth", "lxc.net.0.veth.pair = veth100i0", "lxc.net.0.hwaddr = BC:24:11:00:00:0A", "lxc.net.0.name = eth0",
                r#"lxc.net.0.script.up = /bin/sh -c 'ip link set dev "$4" master vmbr0 && ip link set dev "$4" up'"#,
                "lxc.net.0.ipv4.address = 10.88.0.10/24", "lxc.net.0.ipv4.gateway = 10.88.0.1", "lxc.net.0.flags = up",
            ]),
            // On a real node: PVE's own hook, which handles firewall= and tag=.
            (&[("net0", "name=eth0,bridge=vmbr0,firewall=1,tag=10,mtu=1400,ip=dhcp,type=veth")], true, &[
                "lxc.net.0.type = veth", "lxc.net.0.veth.pair = veth100i0", "lxc.net.0.name = eth0", "lxc.net.0.mtu = 1400",
                "lxc.net.0.script.up = /usr/share/lxc/lxcnetaddbr", "lxc.net.0.flags = up",
            ]),
            // tag without the hook; a second interface, IPv6, link down.
            (&[("net0", "name=eth0,bridge=vmbr0,tag=10"), ("net1", "name=net1,bridge=vmbr1,ip6=fd00::5/64,gw6=fd00::1,link_down=1")], false, &[
                "lxc.net.0.type = veth", "lxc.net.0.veth.pair = veth100i0", "lxc.net.0.name = eth0",
                concat!(r#"lxc.net.0.script.up = /bin/sh -c 'ip link set dev "$4" master vmbr0"#,
                    r#" && bridge vlan del dev "$4" vid 1 && bridge vlan add dev "$4" vid 10 pvid untagged"#,
                    r#" && ip link set dev "$4" up'"#),
                "lxc.net.0.flags = up",
                "lxc.net.1.type = veth", "lxc.net.1.veth.pair = veth100i1", "lxc.net.1.name = net1",
                r#"lxc.net.1.script.up = /bin/sh -c 'ip link set dev "$4" master vmbr1 && ip link set dev "$4" up'"#,
                "lxc.net.1.ipv6.address = fd00::5/64", "lxc.net.1.ipv6.gateway = fd00::1",
            ]),
        ];
        for (keys, addbr, want) in cases {
            assert_eq!(lines(keys, *addbr), *want, "{keys:?}");
        }
    }

    #[test]
    fn firewall_without_the_hook_names_the_firewall_bridge() {
        let l = lines(&[("net2", "name=eth0,bridge=vmbr0,firewall=1")], false);
        assert!(l.iter().any(|x| x.starts_with("lxc.net.2.script.up") && x.contains("master fwbr100i2 ")), "{l:?}");
        assert_eq!(host_ifname(100, 3), "veth100i3");
    }
}
