//! Layer formats (gzip, zstd incl. multi-frame, plain tar) and xattrs.

mod common;

use common::*;
use nexcage_image::archive::import;
use nexcage_image::platform::Platform;
use nexcage_image::Store;

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

#[test]
fn gzip_zstd_and_plain_layers_with_xattrs() {
    let src = tempfile::tempdir().unwrap();
    let l = Layout::new(src.path());
    let plain = tar_layer(&[E::Dir("p", 0o755), E::File("p/plain", 0o644, b"plain")]);
    let gz = tar_layer(&[E::File("p/gz", 0o644, b"gz")]);
    // A layer split over two zstd frames (as zstd:chunked writes them).
    let z = tar_layer(&[
        E::File("p/zstd", 0o600, &vec![7u8; 200_000]),
        E::File("p/z2", 0o644, b"z2"),
    ]);
    let mid = 512 * 3;
    let mut zdata = zstd(&z[..mid]);
    zdata.extend(zstd(&z[mid..]));
    let xattr = xattr_layer("p/xattr", 0);
    let layers = [
        (
            plain.clone(),
            plain.clone(),
            "application/vnd.oci.image.layer.v1.tar",
        ),
        (
            gz.clone(),
            gzip(&gz),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (
            z.clone(),
            zdata,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        (
            xattr.clone(),
            gzip(&xattr),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
    ];
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for (raw, blob, mt) in &layers {
        let d = l.blob(blob);
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
        diffs.push(sha(raw));
    }
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs}
    }))
    .unwrap();
    let cd = l.blob(&cfg);
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = l.blob(&m);
    std::fs::write(
        src.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": m.len(),
            "annotations": {"org.opencontainers.image.ref.name": "localhost/formats:1"}}]}))
        .unwrap(),
    )
    .unwrap();

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    import(&store, src.path(), None, &Platform::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    nexcage_image::unpack::unpack_rootfs(
        &store,
        &store.resolve("localhost/formats:1").unwrap(),
        out.path(),
        &Default::default(),
    )
    .unwrap();
    let p = out.path().join("p");
    assert_eq!(std::fs::read(p.join("plain")).unwrap(), b"plain");
    assert_eq!(std::fs::read(p.join("gz")).unwrap(), b"gz");
    assert_eq!(std::fs::read(p.join("zstd")).unwrap(), vec![7u8; 200_000]);
    assert_eq!(std::fs::read(p.join("z2")).unwrap(), b"z2");
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(p.join("xattr").as_path(), "user.nexcage", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"works");
}
