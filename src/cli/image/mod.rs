//! `nexcage image ...`, `nexcage layer ...`, `nexcage cache ...`: the image
//! store's command line. Each file parses one command's flags, calls
//! `nexcage_image` and prints its result; the store itself is a library.

mod archive;
pub mod cache;
pub mod layer;
mod list;
pub mod pull;
mod remove;
mod tag;
mod template;
pub mod unpack;

use std::path::Path;

use anyhow::Result;
use nexcage_image::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry (v2 API) into the store.
    Pull(pull::Args),
    /// List images in the store.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Show an image as JSON.
    Inspect(list::InspectArgs),
    /// Re-check every blob's digest and size and the chain of diff_ids.
    Validate { reference: String },
    /// Remove image names; blobs no longer referenced are garbage collected.
    #[command(alias = "rm")]
    Remove(remove::Args),
    /// Delete blobs that no image references (garbage collection).
    #[command(alias = "gc")]
    Prune,
    /// Import an OCI archive, a docker-archive or an OCI layout directory.
    Import(archive::ImportArgs),
    /// Write an image to an archive file (with --layers: its layer blobs).
    Export(archive::ExportArgs),
    /// Give an image another name.
    Tag(tag::Args),
    /// Unpack an image's layers into DIR (a rootfs), or with --zfs once into
    /// a ZFS base dataset + `@__base__` snapshot that Proxmox guests clone.
    Unpack(unpack::Args),
    /// Write Proxmox container templates of an image: `<stem>.tar`, an OCI
    /// archive `pct create` takes on Proxmox VE >= 9.1, and `<stem>.tar.zst`,
    /// a rootfs tarball for older releases. Prints the paths written.
    Template(template::Args),
    /// Create a runnable OCI bundle: DIR/rootfs and DIR/config.json.
    Bundle(unpack::BundleArgs),
}

/// Runs an image command on the store at `store_dir`; the exit status.
pub fn run(cmd: ImageCommand, store_dir: &Path) -> Result<i32> {
    let store = Store::open(store_dir)?;
    match cmd {
        ImageCommand::Validate { reference } => return layer::check(Some(&reference), &store, true),
        ImageCommand::Pull(a) => pull::run(a, &store)?,
        ImageCommand::List(a) => list::list(a, &store)?,
        ImageCommand::Inspect(a) => list::inspect(a, &store)?,
        ImageCommand::Remove(a) => remove::remove(a, &store)?,
        ImageCommand::Prune => remove::prune(&store)?,
        ImageCommand::Import(a) => archive::import(a, &store)?,
        ImageCommand::Export(a) => archive::export(a, &store)?,
        ImageCommand::Tag(a) => store.tag(&a.source, &a.target)?,
        ImageCommand::Unpack(a) => unpack::unpack(a, &store)?,
        ImageCommand::Template(a) => template::run(a, &store)?,
        ImageCommand::Bundle(a) => unpack::bundle(a, &store)?,
    }
    Ok(0)
}

/// Bytes in decimal units, one decimal: `999 B`, `1.5 kB`, `2.0 MB`.
pub(super) fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Pretty JSON on stdout, object keys sorted.
pub(super) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let v = serde_json::to_value(v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// `rows` as JSON, or as a table (see `cli::table`): `header`, then the
/// table rows `cells(row)` gives for each row; `right`: right-aligned columns.
pub(super) fn print_rows<T: serde::Serialize>(
    format: OutputFormat,
    rows: &[T],
    header: &[&str],
    right: &[&str],
    cells: impl Fn(&T) -> Vec<Vec<String>>,
) -> Result<()> {
    if format == OutputFormat::Json {
        return print_json(&rows);
    }
    super::table::print(header, right, rows.iter().flat_map(cells));
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn pull_tls_verify_parses_like_podman() {
        let parse = |args: &[&str]| match crate::cli::Cli::try_parse_from(["nexcage", "image", "pull"].iter().chain(args)).unwrap().command {
            Some(crate::cli::Command::Image { cmd: super::ImageCommand::Pull(a) }) => a.tls_verify,
            other => panic!("{other:?}"),
        };
        assert!(!parse(&["--tls-verify=false", "x"]));
        assert!(parse(&["x"]));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(super::human(999), "999 B");
        assert_eq!(super::human(1500), "1.5 kB");
    }
}
