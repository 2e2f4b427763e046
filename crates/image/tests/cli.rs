//! The clap commands end to end, as the main binary will run them.

mod common;

use clap::Parser;
use common::*;
use nexcage_image::{
    run_cache, run_image, run_image_with, run_layer, CacheCommand, ImageCommand, LayerCommand,
};

#[derive(Parser)]
enum Top {
    #[command(subcommand)]
    Image(ImageCommand),
    #[command(subcommand)]
    Layer(LayerCommand),
    #[command(subcommand)]
    Cache(CacheCommand),
}

fn image(args: &[&str]) -> ImageCommand {
    match Top::try_parse_from(
        std::iter::once("x")
            .chain(std::iter::once("image"))
            .chain(args.iter().copied()),
    )
    .unwrap()
    {
        Top::Image(c) => c,
        _ => unreachable!(),
    }
}

fn parse(args: &[&str]) -> Top {
    Top::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap()
}

#[test]
fn commands_end_to_end() {
    if !have("commands_end_to_end", &["busybox"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(
        &[busybox_layer(), tar_layer(&[E::File("f", 0o644, b"f")])],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "localhost/cli:1");
    let sd = tempfile::tempdir().unwrap();
    let root = sd.path();

    // Flags parse like podman's.
    assert!(matches!(
        image(&["pull", "--tls-verify=false", "x"]),
        ImageCommand::Pull {
            tls_verify: false,
            ..
        }
    ));
    assert!(matches!(
        image(&["pull", "x"]),
        ImageCommand::Pull {
            tls_verify: true,
            ..
        }
    ));

    assert_eq!(
        run_image(image(&["import", src.path().to_str().unwrap()]), root).unwrap(),
        0
    );
    assert_eq!(
        run_image(
            image(&["tag", "localhost/cli:1", "localhost/cli:alias"]),
            root
        )
        .unwrap(),
        0
    );
    assert_eq!(
        run_image(image(&["list", "--format", "json", "--show-layers"]), root).unwrap(),
        0
    );
    assert_eq!(
        run_image(image(&["inspect", "localhost/cli:alias", "--config"]), root).unwrap(),
        0
    );
    // Short names resolve to the one image they can mean.
    assert_eq!(
        run_image(image(&["inspect", "cli:1", "--layers"]), root).unwrap(),
        0
    );
    // A digest prefix resolves too.
    assert_eq!(
        run_image(image(&["inspect", &b.manifest_digest[7..19]]), root).unwrap(),
        0
    );

    // In use by a container: refused unless forced (callback and file forms).
    let e = run_image_with(image(&["remove", "localhost/cli:alias"]), root, &|n| {
        n == "localhost/cli:alias"
    })
    .unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    std::fs::write(root.join("in-use"), "localhost/cli:alias\n").unwrap();
    assert!(run_image(image(&["rm", "localhost/cli:alias"]), root).is_err());
    assert_eq!(
        run_image(image(&["rm", "--force", "localhost/cli:alias"]), root).unwrap(),
        0
    );
    std::fs::remove_file(root.join("in-use")).unwrap();

    // The other name keeps every blob.
    let Top::Layer(v) = parse(&["layer", "validate", "localhost/cli:1"]) else {
        unreachable!()
    };
    assert_eq!(run_layer(v, root).unwrap(), 0);
    let Top::Layer(ls) = parse(&["layer", "list", "--format", "json"]) else {
        unreachable!()
    };
    assert_eq!(run_layer(ls, root).unwrap(), 0);

    // Corrupt a layer in the store: validate reports it (exit 1).
    let p = root.join("blobs/sha256").join(&b.layer_digests[1][7..]);
    let mut data = std::fs::read(&p).unwrap();
    data[0] ^= 1;
    std::fs::write(&p, data).unwrap();
    let Top::Layer(v) = parse(&["layer", "validate"]) else {
        unreachable!()
    };
    assert_eq!(run_layer(v, root).unwrap(), 1);

    // An unreferenced blob is collected by cache clear; --all empties the store.
    std::fs::write(root.join("blobs/sha256").join("a".repeat(64)), b"junk").unwrap();
    let Top::Cache(s) = parse(&["cache", "stats", "--format", "json"]) else {
        unreachable!()
    };
    assert_eq!(run_cache(s, root).unwrap(), 0);
    let Top::Cache(c) = parse(&["cache", "clear"]) else {
        unreachable!()
    };
    assert_eq!(run_cache(c, root).unwrap(), 0);
    assert!(!root.join("blobs/sha256").join("a".repeat(64)).exists());
    assert!(root
        .join("blobs/sha256")
        .join(&b.config_digest[7..])
        .exists());
    let Top::Cache(c) = parse(&["cache", "clear", "--all"]) else {
        unreachable!()
    };
    assert_eq!(run_cache(c, root).unwrap(), 0);
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    let Top::Cache(c) = parse(&["cache", "list"]) else {
        unreachable!()
    };
    assert_eq!(run_cache(c, root).unwrap(), 0);
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
