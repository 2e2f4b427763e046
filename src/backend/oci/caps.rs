//! Capability names the runtime does not know. Engines add a newer kernel's
//! names before every runtime knows them; runc (libcontainer/capabilities)
//! warns "ignoring unknown or unavailable capabilities: [...]" and applies
//! the known ones, so nexcage does the same instead of refusing the config.

use libcontainer::oci_spec::runtime::Capability;
use serde_json::Value;

/// The five sets of `process.capabilities`.
const SETS: [&str; 5] = ["bounding", "effective", "inheritable", "permitted", "ambient"];

/// Whether `name` (e.g. `CAP_NET_ADMIN`) is a capability nexcage knows.
pub fn is_known(name: &str) -> bool {
    serde_json::from_value::<Capability>(Value::String(name.to_string())).is_ok()
}

/// Removes unknown names from every set of `process` (an OCI process
/// object, raw JSON) and returns them, each once, in order of appearance.
/// Entries that are not strings are left for the parser to refuse.
pub fn drop_unknown(process: &mut Value) -> Vec<String> {
    let mut dropped: Vec<String> = Vec::new();
    let Some(caps) = process.get_mut("capabilities").and_then(Value::as_object_mut) else { return dropped };
    for set in SETS {
        let Some(list) = caps.get_mut(set).and_then(Value::as_array_mut) else { continue };
        list.retain(|v| match v.as_str() {
            Some(name) if !is_known(name) => {
                if !dropped.iter().any(|d| d == name) {
                    dropped.push(name.to_string());
                }
                false
            }
            _ => true,
        });
    }
    dropped
}

/// runc's warning for the dropped names.
pub fn warning(dropped: &[String]) -> String {
    format!("ignoring unknown or unavailable capabilities: [{}]", dropped.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_dropped_known_kept() {
        let mut p = serde_json::json!({"capabilities": {
            "bounding": ["CAP_KILL", "CAP_BOGUS", "CAP_CHECKPOINT_RESTORE"],
            "effective": ["CAP_BOGUS", "CAP_KILL"],
            "ambient": ["CAP_NEW_ONE"]
        }});
        assert_eq!(drop_unknown(&mut p), vec!["CAP_BOGUS", "CAP_NEW_ONE"]);
        assert_eq!(p["capabilities"]["bounding"], serde_json::json!(["CAP_KILL", "CAP_CHECKPOINT_RESTORE"]));
        assert_eq!(p["capabilities"]["effective"], serde_json::json!(["CAP_KILL"]));
        assert_eq!(p["capabilities"]["ambient"], serde_json::json!([]));
        assert_eq!(warning(&["CAP_BOGUS".into()]), "ignoring unknown or unavailable capabilities: [CAP_BOGUS]");
    }

    #[test]
    fn nothing_to_drop() {
        let mut p = serde_json::json!({"args": ["sh"]});
        assert!(drop_unknown(&mut p).is_empty());
    }
}
