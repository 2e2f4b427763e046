//! `image template`: Proxmox container templates of an image.

use std::path::PathBuf;

use anyhow::Result;
use nexcage_image::template::{self, TemplateFormat};
use nexcage_image::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    reference: String,
    /// Directory to write into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    output_dir: PathBuf,
    /// Which file(s) to write.
    #[arg(long, value_enum, default_value = "both")]
    format: Format,
    /// File name stem (default: like Proxmox's OCI pull, e.g. `nginx_latest`).
    #[arg(long)]
    name: Option<String>,
}

/// The template files `--format` names (see [`TemplateFormat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `<stem>.tar`, an OCI archive (Proxmox VE >= 9.1).
    Oci,
    /// `<stem>.tar.zst`, a rootfs tarball (older Proxmox VE).
    Rootfs,
    /// Both files.
    Both,
}

pub fn run(a: Args, store: &Store) -> Result<()> {
    let format = match a.format {
        Format::Oci => TemplateFormat::Oci,
        Format::Rootfs => TemplateFormat::Rootfs,
        Format::Both => TemplateFormat::Both,
    };
    let e = store.resolve(&a.reference)?;
    for p in template::write(store, &e, &a.output_dir, format, a.name.as_deref())? {
        println!("{}", p.display());
    }
    Ok(())
}
