//! `image list` (a table or JSON) and `image inspect` (JSON).

use anyhow::Result;
use nexcage_image::{summary, Store};

use super::{human, print_json, print_rows, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    #[arg(long)]
    show_layers: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    reference: String,
    /// Print the image configuration.
    #[arg(long)]
    config: bool,
    /// Print the layer descriptors.
    #[arg(long)]
    layers: bool,
}

pub fn list(a: ListArgs, store: &Store) -> Result<()> {
    let short = |d: &str| d.strip_prefix("sha256:").unwrap_or(d).get(..12).unwrap_or(d).to_string();
    print_rows(a.format, &summary::list(store, a.show_layers)?, &["NAME", "DIGEST", "SIZE", "CREATED"], &["SIZE"], |r| {
        let created = r.created.clone().unwrap_or_else(|| "-".into());
        let mut rows = vec![vec![r.name.clone(), short(&r.digest), human(r.size), created]];
        // --show-layers: one indented row per layer, bottom layer first.
        for l in r.layers.iter().flatten() {
            rows.push(vec!["  layer".into(), short(&l.digest), human(l.size), String::new()]);
        }
        rows
    })
}

pub fn inspect(a: InspectArgs, store: &Store) -> Result<()> {
    let e = store.resolve(&a.reference)?;
    let m = store.image_manifest(&e)?;
    let cfg = store.config(&m)?;
    match (a.config, a.layers) {
        (false, false) => print_json(&summary::details(store, &e)?),
        (true, false) => print_json(&cfg),
        (false, true) => print_json(m.layers()),
        (true, true) => print_json(&serde_json::json!({"config": cfg, "layers": m.layers()})),
    }
}
