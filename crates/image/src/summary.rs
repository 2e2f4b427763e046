//! What `image list` and `image inspect` show of a stored image: typed
//! summaries the binary prints as a table or as JSON (field names are the
//! JSON keys, camelCase like the OCI image spec's).

use oci_spec::image::{Config, ImageManifest};

use crate::error::Result;
use crate::store::{ImageEntry, Store};

/// One image of the store. `size` is in bytes: config plus layer blobs as
/// the manifest gives them (compressed).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    pub name: String,
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// RFC 3339 time from the image config, if it has one.
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    pub layer_count: usize,
    /// The layer descriptors, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSummary>>,
}

/// A layer descriptor of a manifest (`size` in bytes, as stored).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// `image inspect` without `--config`/`--layers`: the summary (with layers),
/// the runtime part of the image config and the manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImageDetails {
    #[serde(flatten)]
    pub summary: ImageSummary,
    pub config: Option<Config>,
    pub manifest: ImageManifest,
}

/// The summary of `image`, with its layer descriptors if `with_layers`.
///
/// Errors: the manifest or config blob is missing or malformed.
pub fn summarize(store: &Store, image: &ImageEntry, with_layers: bool) -> Result<ImageSummary> {
    let m = store.image_manifest(image)?;
    let cfg = store.config(&m)?;
    let size = m.config().size() + m.layers().iter().map(|l| l.size()).sum::<u64>();
    let layers = with_layers.then(|| {
        m.layers()
            .iter()
            .map(|l| LayerSummary {
                digest: l.digest().to_string(),
                size: l.size(),
                media_type: l.media_type().to_string(),
            })
            .collect()
    });
    Ok(ImageSummary {
        name: image.name.clone(),
        digest: image.descriptor.digest().to_string(),
        media_type: image.descriptor.media_type().to_string(),
        size,
        created: cfg.created().clone(),
        os: cfg.os().to_string(),
        architecture: cfg.architecture().to_string(),
        layer_count: m.layers().len(),
        layers,
    })
}

/// Every named image of the store, in index.json order.
pub fn list(store: &Store, with_layers: bool) -> Result<Vec<ImageSummary>> {
    store
        .images()?
        .iter()
        .map(|e| summarize(store, e, with_layers))
        .collect()
}

/// The full view of `image` that `image inspect` prints by default.
pub fn details(store: &Store, image: &ImageEntry) -> Result<ImageDetails> {
    let m = store.image_manifest(image)?;
    let cfg = store.config(&m)?;
    Ok(ImageDetails {
        summary: summarize(store, image, true)?,
        config: cfg.config().clone(),
        manifest: m,
    })
}
