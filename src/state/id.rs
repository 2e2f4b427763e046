//! Container id rules: what runc accepts, plus a length bound.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid container id: must not be empty")]
    Empty,
    #[error("invalid container id {0:?}: longer than 255 characters (it names the state directory)")]
    TooLong(String),
    #[error("invalid container id {0:?}: only letters, digits, '_', '+', '-' and '.' are allowed, and it must not be '.' or '..'")]
    BadChars(String),
}

/// The longest id: a file name's limit (NAME_MAX), as the id names the
/// container's state directory.
const MAX_LEN: usize = 255;

/// Accepts runc's id alphabet (`[A-Za-z0-9_+.-]`), which covers containerd's
/// 64-hex ids; rejects path tricks (`/`, `.`, `..`) and over-long ids.
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_LEN {
        let short: String = id.chars().take(32).collect();
        return Err(IdError::TooLong(format!("{short}...")));
    }
    let ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok || id == "." || id == ".." {
        return Err(IdError::BadChars(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_engine_ids() {
        for id in ["a", "web-1", "x.y_z+1", &"f".repeat(64), &"a".repeat(255)] {
            assert_eq!(validate(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        for id in ["", ".", "..", "a/b", "../x", "a b", "é", "a\n"] {
            assert!(validate(id).is_err(), "{id:?}");
        }
        assert!(matches!(validate(&"a".repeat(256)), Err(IdError::TooLong(_))));
    }
}
