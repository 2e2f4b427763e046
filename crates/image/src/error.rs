//! Library error type. The binary's CLI converts these into `anyhow`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {0:?}: {1}")]
    InvalidReference(String, String),
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("image {0:?} not found in the store")]
    ImageNotFound(String),
    #[error("blob {0} not found in the store")]
    BlobNotFound(String),
    #[error("image {0:?} is in use by a container (use --force to remove anyway)")]
    InUse(String),
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("authentication required by {registry}: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("no manifest for platform {wanted} (available: {available})")]
    NoPlatform { wanted: String, available: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("layer entry {entry:?}: {source}")]
    Entry {
        entry: String,
        source: std::io::Error,
    },
    #[error("malformed {what}: {message}")]
    Malformed { what: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error("zfs: {0}")]
    Zfs(#[from] nexcage_zfs::ZfsError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    OciSpec(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Http(#[from] ureq::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.into(),
            source: e.into(),
        })
    }
}

pub(crate) fn malformed(what: impl Into<String>, message: impl ToString) -> Error {
    Error::Malformed {
        what: what.into(),
        message: message.to_string(),
    }
}
