//! `nexcage layer list|validate`: layer blobs, their users, their integrity.

use anyhow::{Context, Result};
use nexcage_image::{usage, validate, Store};

use super::{human, print_rows, OutputFormat};

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
}

/// Exit status 1 when `validate` finds a corrupt blob.
pub fn run(cmd: LayerCommand, store_dir: &std::path::Path) -> Result<i32> {
    let store = Store::open(store_dir)?;
    match cmd {
        LayerCommand::List { format } => list(format, &store).map(|()| 0),
        LayerCommand::Validate { reference } => check(reference.as_deref(), &store),
    }
}

fn list(format: OutputFormat, store: &Store) -> Result<()> {
    print_rows(format, &usage::layers(store)?, &["DIGEST", "SIZE", "IMAGES"], &["SIZE"], |l| {
        vec![vec![l.digest.clone(), human(l.size), l.images.join(",")]]
    })
}

fn check(reference: Option<&str>, store: &Store) -> Result<i32> {
    let blobs = validate::blobs_to_check(store, reference)?;
    let mut bad = 0;
    for (d, size) in &blobs {
        if let Some(p) = validate::check_blob(store, d, *size).with_context(|| format!("reading blob {d}"))? {
            bad += 1;
            println!("CORRUPT {d}: {p}");
        }
    }
    println!("{} blobs checked, {} corrupt", blobs.len(), bad);
    Ok(if bad > 0 { 1 } else { 0 })
}
