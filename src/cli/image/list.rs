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
    let header = format!("{:<50} {:<14} {:>10}  CREATED", "NAME", "DIGEST", "SIZE");
    print_rows(a.format, &summary::list(store, a.show_layers)?, &header, |r| {
        let d = &r.digest;
        let short = d.strip_prefix("sha256:").unwrap_or(d).get(..12).unwrap_or(d);
        let created = r.created.as_deref().unwrap_or("-");
        let mut line = format!("{:<50} {:<14} {:>10}  {created}", r.name, short, human(r.size));
        for l in r.layers.iter().flatten() {
            line.push_str(&format!("\n    {} {:>10}", l.digest, human(l.size)));
        }
        line
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
