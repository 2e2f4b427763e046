//! Drives the image commands from a shell, the way the main binary will:
//! `nexcage-image [--root DIR] image|layer|cache ...`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nexcage_image::{run_cache, run_image, run_layer, CacheCommand, ImageCommand, LayerCommand};

#[derive(Parser)]
struct Cli {
    /// Store directory (default $NEXCAGE_STORAGE_PATH or /var/lib/nexcage).
    #[arg(long, env = "NEXCAGE_STORAGE_PATH", default_value = nexcage_image::store::DEFAULT_STORE)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(subcommand)]
    Image(ImageCommand),
    #[command(subcommand)]
    Layer(LayerCommand),
    #[command(subcommand)]
    Cache(CacheCommand),
}

fn main() {
    tracing_subscriber_init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Image(c) => run_image(c, &cli.root),
        Cmd::Layer(c) => run_layer(c, &cli.root),
        Cmd::Cache(c) => run_cache(c, &cli.root),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("nexcage: {e:#}");
            std::process::exit(1);
        }
    }
}

fn tracing_subscriber_init() {
    // The example keeps dependencies minimal: logs go nowhere unless the
    // main binary installs a subscriber.
}
