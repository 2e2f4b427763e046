//! Property strings (`name=eth0,bridge=vmbr0`), parsed and printed the way
//! pve-common's `parse_property_string` / `print_property_string` do.

use super::{is_true, Schema};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn default_key(fmt: &Map<String, Value>) -> Option<&str> {
    fmt.iter()
        .find(|(_, v)| is_true(v.get("default_key")))
        .map(|(k, _)| k.as_str())
}

/// Split a property string into its keys. Errors use Proxmox's wording.
pub fn parse_property_string(
    fmt: &Map<String, Value>,
    data: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut res = BTreeMap::new();
    for part in data.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = part.split_once('=') {
            if k.is_empty() || v.is_empty() {
                return Err("missing key in comma-separated list property".into());
            }
            if res.contains_key(k) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}"
                ));
            }
            if !fmt.contains_key(k) {
                return Err(format!("invalid key in comma-separated list property: {k}"));
            }
            res.insert(k.to_string(), v.to_string());
        } else {
            let dk = default_key(fmt).ok_or_else(|| {
                "value without key, but schema does not define a default key".to_string()
            })?;
            if res.contains_key(dk) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}"
                ));
            }
            res.insert(dk.to_string(), part.to_string());
        }
    }
    Ok(res)
}

/// Check a property-string value; sub-key errors land in `errors` as
/// `param.key` (as pve-common reports them).
pub(crate) fn check(
    schema: &Schema,
    name: &str,
    fmt: &Map<String, Value>,
    value: &str,
    errors: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let parsed = parse_property_string(fmt, value).map_err(|e| format!("invalid format - {e}"))?;
    let mut sub = BTreeMap::new();
    for (k, v) in &parsed {
        if let Some(p) = fmt.get(k) {
            if let Err(e) = schema.check_prop(&format!("{name}.{k}"), p, v, &mut sub) {
                sub.insert(format!("{name}.{k}"), e);
            }
        }
    }
    for (k, p) in fmt {
        if !is_true(p.get("optional")) && !parsed.contains_key(k) {
            sub.insert(
                format!("{name}.{k}"),
                "property is missing and it is not optional".into(),
            );
        }
    }
    if sub.is_empty() {
        Ok(())
    } else {
        errors.extend(sub);
        Err("invalid format - format error".into())
    }
}

/// Print keys in Proxmox's order: default key bare, then required keys,
/// then the rest sorted.
pub fn print_property_string(
    fmt: &Map<String, Value>,
    values: &BTreeMap<String, String>,
) -> String {
    let dk = default_key(fmt);
    let mut out = Vec::new();
    if let Some(v) = dk.and_then(|k| values.get(k)) {
        out.push(v.clone());
    }
    let required = |k: &str| fmt.get(k).is_some_and(|p| !is_true(p.get("optional")));
    for (k, v) in values
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != dk && required(k))
    {
        out.push(format!("{k}={v}"));
    }
    for (k, v) in values
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != dk && !required(k))
    {
        out.push(format!("{k}={v}"));
    }
    out.join(",")
}
