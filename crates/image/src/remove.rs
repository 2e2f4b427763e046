//! Removing images: the in-use guard (`<store>/in-use`, written by the
//! binary for the images its containers use), name removal and clearing
//! the whole cache.

use crate::error::{Error, Result};
use crate::store::{GcReport, Store};

/// Name of the optional file in the store dir listing image references in
/// use by containers, one per line (read by [`in_use`]).
pub const IN_USE_FILE: &str = "in-use";

/// The image names listed in `<store>/in-use`, as written and as the store
/// resolves them (a missing or unreadable file lists none).
pub fn in_use(store: &Store) -> Vec<String> {
    let listed: Vec<String> = std::fs::read_to_string(store.root().join(IN_USE_FILE))
        .map(|s| {
            s.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    listed
        .iter()
        .filter_map(|r| store.resolve(r).ok())
        .map(|e| e.name)
        .chain(listed.iter().cloned())
        .collect()
}

/// Remove the name `reference` resolves to and return that name. Unless
/// `force`, refuses with [`Error::InUse`] when `in_use` says a container
/// uses the image (it is asked with the stored name and with `reference`).
/// Blobs stay until the next [`Store::gc`].
pub fn remove(
    store: &Store,
    reference: &str,
    force: bool,
    in_use: &dyn Fn(&str) -> bool,
) -> Result<String> {
    let e = store.resolve(reference)?;
    if !force && (in_use(&e.name) || in_use(reference)) {
        return Err(Error::InUse(e.name));
    }
    store.remove_ref(&e.name)?;
    Ok(e.name)
}

/// `cache clear`: delete unreferenced blobs and temp files, after dropping
/// every image name if `all`. `None`: another command holds the store.
pub fn clear(store: &Store, all: bool) -> Result<Option<GcReport>> {
    if all {
        for e in store.images()? {
            store.remove_ref(&e.name)?;
        }
    }
    store.gc(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_file_lists_names() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        assert!(in_use(&store).is_empty());
        std::fs::write(d.path().join(IN_USE_FILE), "a:1\n\n  b:2 \n").unwrap();
        assert_eq!(in_use(&store), ["a:1", "b:2"]);
    }
}
