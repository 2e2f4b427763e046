//! The typed operations behind `image`, `layer` and `cache` (the commands
//! themselves run in the top-level tests/image_cli.rs).

mod common;

use common::*;
use nexcage_image::archive::import;
use nexcage_image::platform::Platform;
use nexcage_image::validate::{blobs_to_check, check_blob, BlobProblem};
use nexcage_image::{remove, summary, usage, Error, Store};

/// A store holding one two-layer image as `localhost/cli:1` and `localhost/cli:alias`.
fn store() -> (tempfile::TempDir, Store, Built) {
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(
        &[tar_layer(&[E::File("a", 0o644, b"a")]), tar_layer(&[E::File("f", 0o644, b"f")])],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "localhost/cli:1");
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    import(&store, src.path(), None, &Platform::default()).unwrap();
    store.tag("localhost/cli:1", "localhost/cli:alias").unwrap();
    (sd, store, b)
}

#[test]
fn list_and_inspect() {
    let (_d, store, b) = store();
    let rows = summary::list(&store, true).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].digest, b.manifest_digest);
    assert_eq!(rows[0].layer_count, 2);
    assert_eq!(rows[0].layers.as_ref().map(Vec::len), Some(2));
    assert!(summary::list(&store, false).unwrap()[0].layers.is_none());

    // Short names resolve to the one image they can mean.
    let e = store.resolve("cli:1").unwrap();
    assert_eq!(e.name, "localhost/cli:1");
    // A digest prefix resolves too.
    let e = store.resolve(&b.manifest_digest[7..19]).unwrap();
    assert_eq!(e.digest().unwrap().to_string(), b.manifest_digest);

    // The JSON `image inspect` prints: the summary, config and manifest.
    let v = serde_json::to_value(summary::details(&store, &e).unwrap()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["architecture", "config", "created", "digest", "layerCount", "layers", "manifest", "mediaType", "name", "os", "size"]
    );
}

#[test]
fn remove_refuses_images_in_use() {
    let (d, store, _b) = store();
    // In use by a container: refused unless forced (callback and file forms).
    let e = remove::remove(&store, "localhost/cli:alias", false, &|n| n == "localhost/cli:alias").unwrap_err();
    assert!(matches!(e, Error::InUse(_)), "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
    std::fs::write(d.path().join(remove::IN_USE_FILE), "cli:alias\n").unwrap();
    let listed = remove::in_use(&store);
    assert!(listed.iter().any(|n| n == "localhost/cli:alias"), "{listed:?}");
    assert!(remove::remove(&store, "localhost/cli:alias", false, &|n| listed.iter().any(|u| u == n)).is_err());
    assert_eq!(remove::remove(&store, "localhost/cli:alias", true, &|_| true).unwrap(), "localhost/cli:alias");
    assert!(matches!(store.resolve("localhost/cli:alias"), Err(Error::ImageNotFound(_))));
}

#[test]
fn usage_validate_and_clear() {
    let (_d, store, b) = store();
    let layers = usage::layers(&store).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].images, ["localhost/cli:1", "localhost/cli:alias"]);

    let blobs = blobs_to_check(&store, Some("localhost/cli:1")).unwrap();
    assert_eq!(blobs.len(), 4);
    for (d, size) in &blobs {
        assert_eq!(check_blob(&store, d, *size).unwrap(), None, "{d}");
    }
    // A corrupt layer hashes to something else.
    let (d, size) = &blobs[3];
    let p = store.blob_path(d);
    let mut data = std::fs::read(&p).unwrap();
    data[0] ^= 1;
    std::fs::write(&p, data).unwrap();
    assert!(matches!(check_blob(&store, d, *size).unwrap(), Some(BlobProblem::Hash(_))));
    assert_eq!(blobs_to_check(&store, None).unwrap().len(), 4);

    // An unreferenced blob counts as such and goes with clear.
    std::fs::write(store.root().join("blobs/sha256").join("a".repeat(64)), b"junk").unwrap();
    let s = usage::stats(&store).unwrap();
    assert_eq!((s.images, s.blobs, s.referenced_blobs, s.unreferenced_blobs), (2, 5, 4, 1));
    assert_eq!(usage::blobs(&store).unwrap().iter().filter(|u| u.images.is_empty()).count(), 1);
    let r = remove::clear(&store, false).unwrap().unwrap();
    assert_eq!(r.removed_blobs, 1);
    assert!(store.root().join("blobs/sha256").join(&b.config_digest[7..]).exists());
    remove::clear(&store, true).unwrap().unwrap();
    assert!(store.blobs().unwrap().is_empty());
}
