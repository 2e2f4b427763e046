//! `image tag SOURCE TARGET`: give an image another name.

#[derive(Debug, clap::Args)]
pub struct Args {
    pub(super) source: String,
    pub(super) target: String,
}
