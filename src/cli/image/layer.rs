//! `nexcage layer list|validate|dependencies|optimize`: layer blobs, their
//! users, their integrity. `image validate` shares `check` with `layer
//! validate` and adds the diff_id chain.

use anyhow::{Context, Result};
use nexcage_image::{optimize, usage, validate, Store};

use super::{human, print_rows, OutputFormat};
use crate::context::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum LayerCommand {
    /// List layer blobs and the images that use them.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Re-hash the blobs of an image (or of the whole store) and report corruption.
    Validate { reference: Option<String> },
    /// Each layer of an image with the images and containers that use it.
    Dependencies {
        reference: String,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Prune blobs no image references (identical layers are already stored
    /// once); report bytes freed and what sharing saves for REF's layers.
    Optimize { reference: Option<String> },
}

/// Exit status 1 when `validate` finds a corrupt blob.
pub fn run(cmd: LayerCommand, ctx: &Ctx) -> Result<i32> {
    let store = Store::open(&ctx.image_store()?)?;
    match cmd {
        LayerCommand::List { format } => list(format, &store).map(|()| 0),
        LayerCommand::Validate { reference } => check(reference.as_deref(), &store, false),
        LayerCommand::Dependencies { reference, format } => dependencies(&reference, format, &store, ctx).map(|()| 0),
        LayerCommand::Optimize { reference } => optimize(reference.as_deref(), &store).map(|()| 0),
    }
}

fn list(format: OutputFormat, store: &Store) -> Result<()> {
    print_rows(format, &usage::layers(store)?, &["DIGEST", "SIZE", "IMAGES"], &["SIZE"], |l| {
        vec![vec![l.digest.clone(), human(l.size), l.images.join(",")]]
    })
}

/// Blobs of `reference` (or all), and with `diff_ids` the chain of
/// diff_ids of its layers; one line per problem, a summary line; 1 if any.
pub(super) fn check(reference: Option<&str>, store: &Store, diff_ids: bool) -> Result<i32> {
    let blobs = validate::blobs_to_check(store, reference)?;
    let mut bad = 0;
    for (d, size) in &blobs {
        if let Some(p) = validate::check_blob(store, d, *size).with_context(|| format!("reading blob {d}"))? {
            bad += 1;
            println!("CORRUPT {d}: {p}");
        }
    }
    println!("{} blobs checked, {} corrupt", blobs.len(), bad);
    if let (true, Some(r)) = (diff_ids, reference) {
        let checks = validate::diff_ids(store, &store.resolve(r)?)?;
        let wrong = checks.iter().filter(|c| !c.ok()).count();
        for c in checks.iter().filter(|c| !c.ok()) {
            let or_none = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
            println!("DIFF_ID {}: config says {}, layer hashes to {}", c.layer, or_none(&c.expected), or_none(&c.actual));
        }
        let chain = checks.last().and_then(|c| c.chain_id.clone()).unwrap_or_else(|| "-".into());
        println!("{} diff_ids checked, {} wrong; chain id {chain}", checks.len(), wrong);
        bad += wrong;
    }
    Ok(if bad > 0 { 1 } else { 0 })
}

#[derive(serde::Serialize)]
struct Dependency {
    layer: String,
    size: u64,
    images: Vec<String>,
    containers: Vec<String>,
}

fn dependencies(reference: &str, format: OutputFormat, store: &Store, ctx: &Ctx) -> Result<()> {
    let m = store.image_manifest(&store.resolve(reference)?)?;
    let users = usage::layers(store)?;
    // A container's image, resolved as the store names it.
    let containers: Vec<(String, String)> = crate::admin::inuse::containers_with_images(ctx)?
        .into_iter()
        .map(|(id, i)| (id, store.resolve(&i).map(|e| e.name).unwrap_or(i)))
        .collect();
    let rows: Vec<Dependency> = m.layers().iter().map(|l| {
        let images = users.iter().find(|u| u.digest == l.digest().to_string()).map(|u| u.images.clone()).unwrap_or_default();
        let containers = containers.iter().filter(|(_, i)| images.contains(i)).map(|(id, _)| id.clone()).collect();
        Dependency { layer: l.digest().to_string(), size: l.size(), images, containers }
    }).collect();
    print_rows(format, &rows, &["LAYER", "SIZE", "IMAGES", "CONTAINERS"], &["SIZE"], |d| {
        let or_dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(",") };
        vec![vec![d.layer.clone(), human(d.size), or_dash(&d.images), or_dash(&d.containers)]]
    })
}

/// Shared by `cache optimize` (no reference).
pub(super) fn optimize(reference: Option<&str>, store: &Store) -> Result<()> {
    let r = optimize::optimize(store, reference)?;
    println!("removed {} unreferenced blobs and {} temp files, freed {} bytes ({})", r.removed_blobs, r.removed_temp, r.freed_bytes, human(r.freed_bytes));
    println!("{} layers shared between images, stored once: {} bytes saved ({})", r.shared_layers, r.shared_bytes_saved, human(r.shared_bytes_saved));
    Ok(())
}
