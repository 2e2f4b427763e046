//! runc 1.1.5's rules for a process's user ids and environment, checked
//! before anything is created: for the container's `process` (config.json),
//! an `exec --process` file and the `exec -u`/`-g`/`-e` flags alike.
//!
//! - `user.uid`, `user.gid` and each of `user.additionalGids` must be in
//!   0-2147483647 ("uids and gids must be in range 0-2147483647"): 4294967295
//!   is (uid_t)-1, which setresuid(2) takes as "leave unchanged", so the
//!   process would keep root.
//! - each `env` entry is `NAME=VALUE` with a non-empty NAME and no NUL in
//!   either part (runc's libcontainer `populateProcessEnvironment`).

use serde_json::Value;

/// The largest uid or gid runc accepts (`math.MaxInt32`).
pub const MAX_ID: u64 = 2_147_483_647;

/// Checks `process` (an OCI process object as JSON; absent fields pass).
/// Errors: runc's message for the first entry that breaks a rule.
pub fn check(process: &Value) -> Result<(), String> {
    let user = &process["user"];
    let gids = user["additionalGids"].as_array().map(Vec::as_slice).unwrap_or_default();
    for id in [&user["uid"], &user["gid"]].into_iter().chain(gids) {
        if !id.is_null() && id.as_u64().is_none_or(|n| n > MAX_ID) {
            return Err(format!("uids and gids must be in range 0-{MAX_ID}"));
        }
    }
    for e in process["env"].as_array().map(Vec::as_slice).unwrap_or_default() {
        check_env(e.as_str().unwrap_or_default())?;
    }
    Ok(())
}

fn check_env(pair: &str) -> Result<(), String> {
    let Some((name, value)) = pair.split_once('=') else {
        return Err(format!("invalid environment variable: {pair:?}"));
    };
    if name.is_empty() {
        return Err(format!("environment variable name can't be empty: {pair:?}"));
    }
    if name.contains('\0') {
        return Err(format!("environment variable name can't contain null(\\x00): {pair:?}"));
    }
    if value.contains('\0') {
        return Err(format!("environment variable value can't contain null(\\x00): {pair:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_in_runc_range() {
        assert!(check(&json!({"user": {"uid": 2147483647, "gid": 0, "additionalGids": [5]}})).is_ok());
        for user in [json!({"uid": 4294967295u32}), json!({"gid": 2147483648u32}), json!({"uid": 0, "additionalGids": [1, 4294967295u32]})] {
            assert_eq!(check(&json!({ "user": user })).unwrap_err(), "uids and gids must be in range 0-2147483647");
        }
    }

    #[test]
    fn env_entries_as_runc() {
        assert!(check(&json!({"env": ["A=1", "B=", "C==x"]})).is_ok());
        assert_eq!(check(&json!({"env": ["=x"]})).unwrap_err(), r#"environment variable name can't be empty: "=x""#);
        assert_eq!(check(&json!({"env": [""]})).unwrap_err(), r#"invalid environment variable: """#);
        assert_eq!(check(&json!({"env": ["x"]})).unwrap_err(), r#"invalid environment variable: "x""#);
        assert!(check(&json!({"env": ["A\u{0}B=1"]})).unwrap_err().contains("name can't contain null"));
        assert!(check(&json!({"env": ["A=1\u{0}"]})).unwrap_err().contains("value can't contain null"));
    }
}
