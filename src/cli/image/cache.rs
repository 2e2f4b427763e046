//! `nexcage cache stats|status|list|clear|optimize`: the blob store is the cache.

use anyhow::{bail, Result};
use nexcage_image::{remove, usage, Store};

use super::{human, print_json, print_rows, OutputFormat};

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Number and size of blobs, referenced and not.
    #[command(alias = "status")]
    Stats {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Every blob with its size and users.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Delete unreferenced blobs and temp files; `--all` also drops every image.
    Clear {
        #[arg(long)]
        all: bool,
    },
    /// Prune unreferenced blobs and temp files; report bytes freed and what
    /// the sharing of identical layers saves (they are stored once).
    Optimize,
}

pub fn run(cmd: CacheCommand, store_dir: &std::path::Path) -> Result<i32> {
    let store = Store::open(store_dir)?;
    match cmd {
        CacheCommand::Stats { format } => stats(format, &store)?,
        CacheCommand::List { format } => list(format, &store)?,
        CacheCommand::Clear { all } => match remove::clear(&store, all)? {
            Some(r) => println!("removed {} blobs ({} bytes), {} temp files", r.removed_blobs, r.freed_bytes, r.removed_temp),
            None => bail!("store busy"),
        },
        CacheCommand::Optimize => super::layer::optimize(None, &store)?,
    }
    Ok(0)
}

fn stats(format: OutputFormat, store: &Store) -> Result<()> {
    let s = usage::stats(store)?;
    if format == OutputFormat::Json {
        return print_json(&s);
    }
    println!("store:         {}", s.path);
    println!("images:        {}", s.images);
    println!("blobs:         {} entries, {} bytes ({})", s.blobs, s.bytes, human(s.bytes));
    println!("referenced:    {} entries, {} bytes", s.referenced_blobs, s.referenced_bytes);
    println!("unreferenced:  {} entries, {} bytes", s.unreferenced_blobs, s.unreferenced_bytes);
    Ok(())
}

fn list(format: OutputFormat, store: &Store) -> Result<()> {
    print_rows(format, &usage::blobs(store)?, &["DIGEST", "BYTES", "IMAGES"], &["BYTES"], |b| {
        let images = if b.images.is_empty() { "-".to_string() } else { b.images.join(",") };
        vec![vec![b.digest.clone(), b.size.to_string(), images]]
    })
}
