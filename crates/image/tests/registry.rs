//! Pulls from a real docker-registry on 127.0.0.1.

mod common;

use common::*;
use nexcage_image::pull::pull;
use nexcage_image::registry::Credentials;
use nexcage_image::{Error, Store};

const TOOLS: &[&str] = &["docker-registry", "skopeo", "busybox"];

fn busybox_layout(dir: &std::path::Path) -> (Layout, Built) {
    let mut l = Layout::new(dir);
    let extra = tar_layer(&[
        E::Dir("data", 0o755),
        E::File("data/hello", 0o644, b"hello\n"),
    ]);
    let b = l.image(
        &[busybox_layer(), extra],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "v1");
    (l, b)
}

#[test]
fn pull_by_tag_and_by_digest() {
    if !have("pull_by_tag_and_by_digest", TOOLS) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let (_l, built) = busybox_layout(src.path());
    reg.push(src.path(), "v1", "test/busybox", false, None);

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("{}/test/busybox:v1", reg.host());

    // Without --tls-verify=false a plain-http local registry is refused.
    let mut strict = insecure();
    strict.client.tls_verify = true;
    let e = pull(&store, &name, &strict).unwrap_err();
    assert!(e.to_string().contains("--tls-verify=false"), "{e}");

    let r = pull(&store, &name, &insecure()).unwrap();
    // skopeo keeps our OCI manifest byte for byte, so digests are ours.
    assert_eq!(r.manifest_digest, built.manifest_digest);
    assert_eq!(r.downloaded_blobs, 3);
    let img = store.resolve(&name).unwrap();
    assert_eq!(img.descriptor.digest().to_string(), built.manifest_digest);
    for d in built
        .layer_digests
        .iter()
        .chain([&built.config_digest, &built.manifest_digest])
    {
        assert!(
            sd.path().join("blobs/sha256").join(&d[7..]).is_file(),
            "{d} stored"
        );
    }

    // By digest: nothing new to download, a second name for the same manifest.
    let by_digest = format!("{}/test/busybox@{}", reg.host(), built.manifest_digest);
    let r2 = pull(&store, &by_digest, &insecure()).unwrap();
    assert_eq!(r2.manifest_digest, built.manifest_digest);
    assert_eq!(r2.downloaded_blobs, 0);
    assert_eq!(r2.reused_blobs, 3);
    assert_eq!(store.images().unwrap().len(), 2);

    // A wrong digest is a clean error.
    let bad = format!("{}/test/busybox@sha256:{}", reg.host(), "0".repeat(64));
    assert!(pull(&store, &bad, &insecure()).is_err());

    // The pulled image unpacks into a usable rootfs.
    let out = tempfile::tempdir().unwrap();
    nexcage_image::unpack::unpack_rootfs(&store, &img, out.path(), &Default::default()).unwrap();
    assert!(out.path().join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read(out.path().join("data/hello")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn pull_multi_arch_index() {
    if !have("pull_multi_arch_index", TOOLS) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let bb = busybox_layer();
    let amd = l.image(
        &[bb.clone(), tar_layer(&[E::File("arch", 0o644, b"amd64\n")])],
        "amd64",
        serde_json::json!({}),
        true,
    );
    let arm = l.image(
        &[bb, tar_layer(&[E::File("arch", 0o644, b"arm64\n")])],
        "arm64",
        serde_json::json!({}),
        true,
    );
    let idx = l.tag_index(&[(&amd, "amd64"), (&arm, "arm64")], "multi");
    reg.push(src.path(), "multi", "test/multi", true, None);

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("{}/test/multi:multi", reg.host());
    let r = pull(&store, &name, &insecure()).unwrap();
    assert_eq!(
        r.manifest_digest, amd.manifest_digest,
        "default platform is linux/amd64"
    );

    let mut o = insecure();
    o.platform = nexcage_image::platform::Platform::parse("linux/arm64").unwrap();
    let arm_name = format!("{}/test/multi@{idx}", reg.host());
    let r = pull(&store, &arm_name, &o).unwrap();
    assert_eq!(r.manifest_digest, arm.manifest_digest);
    // The busybox layer is shared: only config, arch layer and nothing else.
    assert_eq!(r.downloaded_blobs, 2);
    let m = store
        .manifest(&nexcage_image::digest::Digest::parse(&r.manifest_digest).unwrap())
        .unwrap();
    assert_eq!(
        store.config(&m).unwrap().architecture().to_string(),
        "arm64"
    );

    o.platform = nexcage_image::platform::Platform::parse("linux/s390x").unwrap();
    let e = pull(&store, &name, &o).unwrap_err();
    assert!(matches!(e, Error::NoPlatform { .. }), "{e}");
    assert!(e.to_string().contains("linux/arm64"), "{e}");
}

#[test]
fn pull_with_basic_auth() {
    if !have(
        "pull_with_basic_auth",
        &["docker-registry", "skopeo", "htpasswd"],
    ) {
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret")));
    let src = tempfile::tempdir().unwrap();
    let (_l, built) = busybox_layout(src.path());
    reg.push(
        src.path(),
        "v1",
        "private/busybox",
        false,
        Some("alice:s3cret"),
    );

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("{}/private/busybox:v1", reg.host());

    // No credentials: a clear error, nothing stored.
    let e = pull(&store, &name, &insecure()).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("no credentials"), "{e}");
    assert!(store.images().unwrap().is_empty());

    // Wrong password.
    let mut o = insecure();
    o.client.credentials = Some(Credentials {
        username: "alice".into(),
        password: "nope".into(),
    });
    let e = pull(&store, &name, &o).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");

    o.client.credentials = Some(Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    assert_eq!(
        pull(&store, &name, &o).unwrap().manifest_digest,
        built.manifest_digest
    );

    // Credentials from an auth.json file.
    let af = sd.path().join("auth.json");
    std::fs::write(
        &af,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let c = nexcage_image::registry::lookup_credentials(&reg.host(), Some(&af)).unwrap();
    assert_eq!(c.as_ref().map(|c| c.username.as_str()), Some("alice"));
    let sd2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(sd2.path()).unwrap();
    o.client.credentials = c;
    assert_eq!(
        pull(&store2, &name, &o).unwrap().manifest_digest,
        built.manifest_digest
    );
}

#[test]
fn corrupted_blob_is_rejected_and_not_stored() {
    if !have("corrupted_blob_is_rejected_and_not_stored", TOOLS) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let (_l, built) = busybox_layout(src.path());
    reg.push(src.path(), "v1", "test/corrupt", false, None);

    // Flip bytes in the middle of the busybox layer as the registry stores it.
    let victim = &built.layer_digests[0];
    let f = reg.blob_file(victim);
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&f, &data).unwrap();

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let e = pull(
        &store,
        &format!("{}/test/corrupt:v1", reg.host()),
        &insecure(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(victim.as_str()), "{e}");
    assert!(
        !sd.path().join("blobs/sha256").join(&victim[7..]).exists(),
        "corrupt blob must not be stored"
    );
    assert!(store.images().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(sd.path().join("tmp")).unwrap().count(),
        0,
        "no temp files left"
    );
}

#[test]
fn pull_docker_schema2_and_manifest_list() {
    if !have("pull_docker_schema2_and_manifest_list", TOOLS) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let bb = busybox_layer();
    let amd = l.image(
        std::slice::from_ref(&bb),
        "amd64",
        serde_json::json!({}),
        true,
    );
    let arm = l.image(
        &[bb, tar_layer(&[E::File("arm", 0o644, b"arm")])],
        "arm64",
        serde_json::json!({}),
        true,
    );
    l.tag_index(&[(&amd, "amd64"), (&arm, "arm64")], "list");
    // skopeo converts to Docker media types (manifest list + schema 2).
    run(std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--all",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:list", src.path().display()))
        .arg(format!("docker://{}/test/docker:list", reg.host())));
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let mut o = insecure();
    o.platform = nexcage_image::platform::Platform::parse("linux/arm64").unwrap();
    let name = format!("{}/test/docker:list", reg.host());
    pull(&store, &name, &o).unwrap();
    let img = store.resolve(&name).unwrap();
    assert_eq!(
        img.descriptor.media_type().to_string(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let out = tempfile::tempdir().unwrap();
    nexcage_image::unpack::unpack_rootfs(&store, &img, out.path(), &Default::default()).unwrap();
    assert_eq!(std::fs::read(out.path().join("arm")).unwrap(), b"arm");
    // And it exports as an OCI archive skopeo reads.
    let f = sd.path().join("x.tar");
    nexcage_image::archive::export(
        &store,
        &img,
        &f,
        nexcage_image::archive::ArchiveFormat::OciArchive,
    )
    .unwrap();
    run(std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", f.display())));
}

#[test]
fn pull_over_https_self_signed() {
    if !have(
        "pull_over_https_self_signed",
        &["docker-registry", "skopeo", "openssl", "busybox"],
    ) {
        return;
    }
    let reg = Registry::start_with(None, true);
    let src = tempfile::tempdir().unwrap();
    let (_l, built) = busybox_layout(src.path());
    reg.push(src.path(), "v1", "tls/busybox", false, None);
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = format!("{}/tls/busybox:v1", reg.host());
    // The certificate is not trusted: refused unless verification is off.
    let mut strict = insecure();
    strict.client.tls_verify = true;
    let e = pull(&store, &name, &strict).unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("tls"),
        "{e}"
    );
    let r = pull(&store, &name, &insecure()).unwrap();
    assert_eq!(r.manifest_digest, built.manifest_digest);
    // Trusted through a certs.d directory (`<dir>/<host:port>/ca.crt`), as
    // podman and skopeo do: verified pull, no --tls-verify=false.
    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir(certs.path().join(reg.host())).unwrap();
    std::fs::copy(reg.ca(), certs.path().join(reg.host()).join("ca.crt")).unwrap();
    let sd2 = tempfile::tempdir().unwrap();
    let mut trusted = insecure();
    trusted.client.tls_verify = true;
    trusted.client.cert_dir = Some(certs.path().to_path_buf());
    let r = pull(&Store::open(sd2.path()).unwrap(), &name, &trusted).unwrap();
    assert_eq!(r.manifest_digest, built.manifest_digest);
    let c = nexcage_image::registry::RegistryClient::new(
        &nexcage_image::reference::Reference::parse(&name).unwrap(),
        &insecure().client,
    )
    .unwrap();
    assert!(
        c.base_url().starts_with("https://"),
        "stays on https: {}",
        c.base_url()
    );
}

#[test]
fn concurrent_pulls_share_the_store() {
    if !have(
        "concurrent_pulls_share_the_store",
        &["docker-registry", "skopeo", "busybox"],
    ) {
        return;
    }
    let reg = Registry::start(None);
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let layers: Vec<Vec<u8>> = (0..4u8)
        .map(|i| tar_layer(&[E::File(&format!("f{i}"), 0o644, &vec![i; 300_000])]))
        .collect();
    let b = l.image(&layers, "amd64", serde_json::json!({}), true);
    l.tag(&b, "v1");
    reg.push(src.path(), "v1", "conc/img", false, None);
    let sd = tempfile::tempdir().unwrap();
    let name = format!("{}/conc/img:v1", reg.host());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let store = nexcage_image::Store::open(sd.path()).unwrap();
                let r = nexcage_image::pull::pull(&store, &name, &insecure()).unwrap();
                assert_eq!(r.manifest_digest, b.manifest_digest);
            });
        }
        s.spawn(|| {
            let store = nexcage_image::Store::open(sd.path()).unwrap();
            for _ in 0..20 {
                store.gc(true).unwrap();
            }
        });
    });
    let store = nexcage_image::Store::open(sd.path()).unwrap();
    assert_eq!(store.images().unwrap().len(), 1);
    let out = tempfile::tempdir().unwrap();
    nexcage_image::unpack::unpack_rootfs(
        &store,
        &store.resolve(&name).unwrap(),
        out.path(),
        &Default::default(),
    )
    .unwrap();
    for i in 0..4u8 {
        assert_eq!(
            std::fs::read(out.path().join(format!("f{i}"))).unwrap(),
            vec![i; 300_000]
        );
    }
}
