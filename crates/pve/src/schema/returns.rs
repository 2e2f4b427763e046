//! Checking an answer against an endpoint's `returns` schema: structure
//! (object/array), required properties, scalar types. Scalars are checked
//! leniently (Perl answers numbers as strings at times).

use super::{is_integer, is_number, is_true, parse_bool, Schema};
use serde_json::Value;

fn scalar_ok(ty: &str, v: &Value) -> bool {
    match (ty, v) {
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("integer", Value::String(s)) => is_integer(s),
        ("number", Value::Number(_)) => true,
        ("number", Value::String(s)) => is_number(s),
        ("boolean", Value::Bool(_)) => true,
        ("boolean", Value::Number(n)) => n.as_u64().is_some_and(|x| x <= 1),
        ("boolean", Value::String(s)) => parse_bool(s).is_some(),
        ("string", Value::String(_) | Value::Number(_)) => true,
        ("null", Value::Null) => true,
        ("object", Value::Object(_)) | ("array", Value::Array(_)) => true,
        ("any", _) => true,
        _ => false,
    }
}

fn check(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    if v.is_null()
        && (is_true(schema.get("optional"))
            || schema.get("type").and_then(Value::as_str) == Some("null"))
    {
        return Ok(());
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    if !scalar_ok(ty, v) {
        return Err(format!("{path}: expected {ty}, got {v}"));
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (name, p) in props {
            if name.contains("[n]") {
                let base = name.trim_end_matches("[n]");
                for (k, val) in obj.iter().filter(|(k, _)| {
                    k.strip_prefix(base)
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
                }) {
                    check(p, val, &format!("{path}.{k}"))?;
                }
                continue;
            }
            match obj.get(name) {
                Some(val) => check(p, val, &format!("{path}.{name}"))?,
                None if !is_true(p.get("optional")) => {
                    return Err(format!("{path}.{name}: missing"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, val) in arr.iter().enumerate() {
            check(items, val, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

impl Schema {
    /// Check `data` (the `data` member of an answer) against `returns`.
    pub fn check_return(&self, method: &str, template: &str, data: &Value) -> Result<(), String> {
        let Some(r) = self
            .endpoint(method, template)
            .and_then(|e| e.get("returns"))
        else {
            return Ok(());
        };
        check(r, data, "data")
    }
}

#[cfg(test)]
mod tests {
    use crate::schema::tests::schema;
    use serde_json::json;

    #[test]
    fn return_shapes() {
        let s = schema();
        s.check_return("GET", "/cluster/nextid", &json!(100))
            .unwrap();
        s.check_return("GET", "/cluster/nextid", &json!("100"))
            .unwrap();
        assert!(s
            .check_return("GET", "/cluster/nextid", &json!({"a": 1}))
            .is_err());
        let ok = json!({"upid":"U","node":"pve","pid":1,"pstart":2,"starttime":3,"type":"vzcreate","id":"100","user":"root@pam","status":"stopped","exitstatus":"OK"});
        s.check_return("GET", "/nodes/{node}/tasks/{upid}/status", &ok)
            .unwrap();
        let mut bad = ok.clone();
        bad.as_object_mut().unwrap().remove("pid");
        assert!(s
            .check_return("GET", "/nodes/{node}/tasks/{upid}/status", &bad)
            .unwrap_err()
            .contains("pid"));
        assert!(s
            .check_return("GET", "/nodes/{node}/lxc", &json!([{"vmid": 100}]))
            .unwrap_err()
            .contains("status"));
    }
}
