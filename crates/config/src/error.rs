use std::path::PathBuf;

/// Errors of loading, validating and editing nexcage's configuration.
/// Messages name the offending key; secrets never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, type, or unknown-key error reported by the JSON parser.
    #[error("config file {path}: {key}: {msg}")]
    Parse {
        path: PathBuf,
        key: String,
        msg: String,
    },
    /// A value that parsed but is out of range or inconsistent.
    #[error("{key}: {msg}")]
    Invalid { key: String, msg: String },
    #[error("unknown config key '{0}'")]
    UnknownKey(String),
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, msg: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            msg: msg.into(),
        }
    }
}
