//! The error every `Backend` operation returns: a few cases callers can
//! match, and everything else as the backend's own message chain.

/// A backend operation's failure.
///
/// `Other` is transparent: its `Display` and `source` are the wrapped
/// `anyhow::Error`'s, so `{e:#}` of a backend failure prints the same
/// message chain the backend built (the CLI's error reporter relies on it).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The container's process (or guest) is not running.
    #[error("container is not running")]
    NotRunning,
    /// The process to signal is gone (kill(2) said ESRCH).
    #[error("no such process")]
    NoSuchProcess,
    /// The spec asks for something this backend cannot do; the message
    /// names the field and why.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Other(anyhow::Error),
}

/// Backend internals use anyhow; a `BackendError` they raised keeps its
/// variant when it crosses the boundary (unless context was added to it).
impl From<anyhow::Error> for BackendError {
    fn from(e: anyhow::Error) -> Self {
        if e.chain().count() > 1 {
            return BackendError::Other(e);
        }
        e.downcast::<BackendError>().unwrap_or_else(BackendError::Other)
    }
}

/// `Result` of a backend operation.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn other_prints_the_same_chain() {
        let inner: anyhow::Result<()> = Err(std::io::Error::other("disk on fire")).context("write x").context("create c1");
        let inner = inner.unwrap_err();
        let want = format!("{inner:#}");
        let be = BackendError::from(inner);
        assert!(matches!(be, BackendError::Other(_)));
        let outer = anyhow::Error::from(be);
        assert_eq!(format!("{outer:#}"), want);
        let outer = outer.context("delete c1");
        assert_eq!(format!("{outer:#}"), format!("delete c1: {want}"));
    }

    #[test]
    fn typed_errors_keep_their_variant() {
        let e = anyhow::Error::from(BackendError::NotRunning);
        assert!(matches!(BackendError::from(e), BackendError::NotRunning));
        let e = anyhow::Error::from(BackendError::NotRunning).context("stats");
        assert!(matches!(BackendError::from(e), BackendError::Other(_)));
    }
}
