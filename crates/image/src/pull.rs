//! `image pull`: manifest (with platform selection), then config and layers
//! downloaded in parallel, each verified while it streams into the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use tracing::{debug, info, warn};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::{self, Platform};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::registry::{ClientOptions, RegistryClient};
use crate::store::{is_index_type, Store};

#[derive(Clone, Debug)]
pub struct PullOptions {
    pub platform: Platform,
    pub client: ClientOptions,
    pub quiet: bool,
    /// Concurrent blob downloads.
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::default(),
            client: ClientOptions::default(),
            quiet: false,
            jobs: 4,
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct PullResult {
    pub name: String,
    pub manifest_digest: String,
    pub downloaded_blobs: usize,
    pub downloaded_bytes: u64,
    pub reused_blobs: usize,
}

pub fn pull(store: &Store, input: &str, opts: &PullOptions) -> Result<PullResult> {
    let r = Reference::parse(input)?;
    let _w = store.writer_lock()?;
    let client = RegistryClient::new(&r, &opts.client)?;
    info!(reference = %r, base = client.base_url(), "pulling");

    let (mut data, mut mt, mut digest) = client.manifest(&r.api_reference())?;
    let from_index = is_index_type(&mt);
    if from_index {
        let e = platform::select(&data, &opts.platform)?;
        debug!(platform = %opts.platform, digest = e.digest, "selected from index");
        let (d2, mt2, dg2) = client.manifest(&e.digest)?;
        (data, mt, digest) = (d2, mt2, dg2);
        if is_index_type(&mt) {
            return Err(Error::Unsupported("nested image index".into()));
        }
    }
    let manifest: ImageManifest = serde_json::from_slice(&data)
        .map_err(|e| crate::error::malformed(format!("manifest {digest}"), e))?;

    // Unique blobs in manifest order (config first); layers shared by
    // several descriptors are fetched once.
    let mut wanted: BTreeMap<Digest, (u64, usize)> = BTreeMap::new();
    for (i, d) in std::iter::once(manifest.config())
        .chain(manifest.layers())
        .enumerate()
    {
        let dg = Digest::try_from(d.digest())?;
        wanted.entry(dg).or_insert((d.size(), i));
    }
    let mut todo: Vec<(Digest, u64, usize)> = Vec::new();
    let mut reused = 0;
    for (d, (size, i)) in wanted {
        if store.has_blob(&d) {
            reused += 1;
        } else {
            todo.push((d, size, i));
        }
    }
    todo.sort_by_key(|t| t.2);
    let bytes: u64 = todo.iter().map(|t| t.1).sum();
    let count = todo.len();

    let progress = Progress::new(opts.quiet);
    let queue = Mutex::new(todo.into_iter());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let jobs = opts.jobs.clamp(1, 16).min(count.max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                    return;
                }
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some((d, size, _)) = next else { return };
                if let Err(e) =
                    fetch_blob(store, &client, &d, size, &progress, opts.client.attempts)
                {
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }

    if !from_index {
        // A single-platform image: say so if it is not what was asked for.
        if let Ok(cfg) = store.config(&manifest) {
            let (os, arch) = (cfg.os().to_string(), cfg.architecture().to_string());
            if !opts.platform.matches(&os, &arch, cfg.variant().as_deref()) {
                warn!(image = %r, image_platform = format!("{os}/{arch}"), wanted = %opts.platform, "image is for another platform");
            }
        }
    }
    store.put_blob_bytes(&data)?;
    let desc = Descriptor::new(MediaType::from(mt.as_str()), data.len() as u64, &digest);
    let name = r.to_string();
    store.set_ref(&name, &desc)?;
    info!(name, %digest, blobs = count, bytes, "pulled");
    Ok(PullResult {
        name,
        manifest_digest: digest.to_string(),
        downloaded_blobs: count,
        downloaded_bytes: bytes,
        reused_blobs: reused,
    })
}

fn fetch_blob(
    store: &Store,
    client: &RegistryClient,
    d: &Digest,
    size: u64,
    progress: &Progress,
    attempts: u32,
) -> Result<()> {
    let pb = progress.bar(d.short(), size);
    let mut attempt = 0;
    loop {
        attempt += 1;
        pb.set_position(0);
        let resp = client.blob(d)?;
        let mut reader = pb.wrap_read(resp.into_body().into_reader());
        match store.put_blob(&mut reader, Some(d), Some(size), d.as_str()) {
            Ok(_) => {
                pb.finish_with_message("done");
                return Ok(());
            }
            // A broken connection mid-stream: start again (the partial temp file is gone).
            Err(Error::Io { source, .. })
                if attempt < attempts.max(1)
                    && source.kind() != std::io::ErrorKind::StorageFull =>
            {
                warn!(digest = %d, error = %source, attempt, "download interrupted, retrying");
            }
            Err(e) => {
                pb.abandon_with_message("failed");
                return Err(e);
            }
        }
    }
}
