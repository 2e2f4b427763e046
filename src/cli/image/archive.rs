//! `image import` and `image export`: OCI archives, docker-archives and
//! OCI layout directories.

use std::path::PathBuf;

use anyhow::Result;
use nexcage_image::archive::{self, ArchiveFormat};
use nexcage_image::platform::Platform;
use nexcage_image::Store;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    path: PathBuf,
    /// Name to store the image under.
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = nexcage_image::platform::HOST)]
    platform: String,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    reference: String,
    #[arg(long, short = 'o')]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "oci-archive", conflicts_with = "layers")]
    format: Format,
    /// Only the layer blobs, as stored, and layers.json (see nexcage_image::archive::export_layers)
    #[arg(long)]
    layers: bool,
}

/// The archive formats `--format` names (see [`ArchiveFormat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    OciArchive,
    DockerArchive,
}

pub fn import(a: ImportArgs, store: &Store) -> Result<()> {
    for i in archive::import(store, &a.path, a.name.as_deref(), &Platform::parse(&a.platform)?)? {
        println!("{} {}", i.name, i.manifest_digest);
    }
    Ok(())
}

pub fn export(a: ExportArgs, store: &Store) -> Result<()> {
    let format = match a.format {
        Format::OciArchive => ArchiveFormat::OciArchive,
        Format::DockerArchive => ArchiveFormat::DockerArchive,
    };
    let e = store.resolve(&a.reference)?;
    if a.layers {
        return Ok(archive::export_layers(store, &e, &a.output)?);
    }
    Ok(archive::export(store, &e, &a.output, format)?)
}
