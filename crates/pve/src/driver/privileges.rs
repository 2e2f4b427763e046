//! The privileges nexcage's create, start and delete need on a node
//! (PROXMOX-FACTS §10 "Token privileges a create needs"; start and delete:
//! the `permissions` of `POST …/status/start|stop` and `DELETE
//! /nodes/{node}/lxc/{vmid}` in the API schema), and which of them a token
//! lacks.

use std::collections::{BTreeMap, BTreeSet};

use super::{ControlPlane, PveError};

/// One privilege (or a choice of privileges) needed on an ACL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// ACL path, e.g. `/vms`, `/storage/local-zfs`.
    pub path: String,
    /// Any one of these suffices (Proxmox's `any` checks).
    pub any_of: Vec<&'static str>,
    /// The operation that needs it: `create`, `start`, `delete`, ...
    pub what: &'static str,
}

impl Need {
    /// How an operator grants it (pveum, pve-docs pveum.adoc).
    pub fn hint(&self) -> String {
        format!(
            "pveum acl modify {} --tokens 'USER@REALM!TOKEN' --roles ROLE, ROLE holding {}",
            self.path,
            self.any_of.join(" or ")
        )
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} (for {})",
            self.any_of.join(" or "),
            self.path,
            self.what
        )
    }
}

/// What the node's configuration asks of a token.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The zfspool storage of the rootfs volumes (`proxmox.storage`).
    pub storage: &'a str,
    /// The storage of the empty template (`proxmox.template_storage`).
    pub template_storage: &'a str,
    /// The bridge guests get `net0` on (`network.bridge`), if any.
    pub bridge: Option<&'a str>,
    /// Whether guests may be privileged (`unprivileged: false`).
    pub privileged: bool,
    /// Whether the template is still to be uploaded (needs
    /// `Datastore.AllocateTemplate` on the template storage).
    pub upload: bool,
}

/// Every privilege create, start and delete need. The VMID is not known
/// before create, so VM privileges are asked on `/vms` (they propagate to
/// `/vms/<vmid>`).
pub fn needed(s: &Setup<'_>) -> Vec<Need> {
    let need = |path: String, any_of: Vec<&'static str>, what| Need { path, any_of, what };
    let mut v = vec![need(
        "/vms".into(),
        vec!["VM.Allocate"],
        "create and delete",
    )];
    for p in [
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Disk",
        "VM.Config.Network",
        "VM.Config.Options",
    ] {
        v.push(need("/vms".into(), vec![p], "create"));
    }
    v.push(need("/vms".into(), vec!["VM.Audit"], "status and config"));
    v.push(need("/vms".into(), vec!["VM.PowerMgmt"], "start and stop"));
    v.push(need(
        format!("/storage/{}", s.storage),
        vec!["Datastore.AllocateSpace"],
        "create",
    ));
    v.push(need(
        format!("/storage/{}", s.template_storage),
        vec!["Datastore.AllocateSpace", "Datastore.Audit"],
        "create (the template)",
    ));
    if s.upload {
        v.push(need(
            format!("/storage/{}", s.template_storage),
            vec!["Datastore.AllocateTemplate"],
            "create (uploads the empty template)",
        ));
    }
    if let Some(b) = s.bridge {
        v.push(need(
            format!("/sdn/zones/localnetwork/{b}"),
            vec!["SDN.Use"],
            "create (bridged network)",
        ));
    }
    if s.privileged {
        v.push(need(
            "/".into(),
            vec!["Sys.Modify"],
            "create (privileged guests)",
        ));
    }
    v
}

/// The needs `have(path)` (the privileges held on a path) does not meet.
pub fn missing(needs: Vec<Need>, mut have: impl FnMut(&str) -> BTreeSet<String>) -> Vec<Need> {
    needs
        .into_iter()
        .filter(|n| {
            let held = have(&n.path);
            !n.any_of.iter().any(|p| held.contains(*p))
        })
        .collect()
}

/// The needs of `s` the control plane's user lacks: each ACL path asked
/// once (GET /access/permissions?path=P). Empty when the driver acts as
/// `root@pam` (pct on the node).
pub fn lacking(cp: &dyn ControlPlane, s: &Setup<'_>) -> Result<Vec<Need>, PveError> {
    let needs = needed(s);
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &needs {
        if held.contains_key(&n.path) {
            continue;
        }
        match cp.privileges(&n.path)? {
            None => return Ok(Vec::new()),
            Some(p) => {
                held.insert(n.path.clone(), p);
            }
        }
    }
    Ok(missing(needs, |p| held.get(p).cloned().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_is_missing() {
        let s = Setup {
            storage: "local-zfs",
            template_storage: "local",
            bridge: Some("vmbr0"),
            privileged: false,
            upload: true,
        };
        let needs = needed(&s);
        assert!(needs
            .iter()
            .any(|n| n.path == "/sdn/zones/localnetwork/vmbr0" && n.any_of == ["SDN.Use"]));
        assert!(!needs.iter().any(|n| n.any_of.contains(&"Sys.Modify")));
        assert!(needs
            .iter()
            .any(|n| n.path == "/storage/local" && n.any_of == ["Datastore.AllocateTemplate"]));
        let all: BTreeSet<String> = needs
            .iter()
            .flat_map(|n| n.any_of.iter().map(|p| p.to_string()))
            .collect();
        assert!(missing(needs.clone(), |_| all.clone()).is_empty());
        // Audit alone is enough for the template storage's read check.
        let mut some = all.clone();
        some.remove("Datastore.AllocateSpace");
        some.remove("VM.Allocate");
        let m = missing(needs, |_| some.clone());
        let text: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "VM.Allocate on /vms (for create and delete)",
                "Datastore.AllocateSpace on /storage/local-zfs (for create)"
            ]
        );
    }

    #[test]
    fn privileged_guests_need_sys_modify() {
        let s = Setup {
            storage: "local-zfs",
            template_storage: "local",
            bridge: None,
            privileged: true,
            upload: false,
        };
        assert!(needed(&s)
            .iter()
            .any(|n| n.path == "/" && n.any_of == ["Sys.Modify"]));
        assert!(!needed(&s)
            .iter()
            .any(|n| n.any_of == ["Datastore.AllocateTemplate"]));
    }
}
