//! clap commands for `nexcage image|layer|cache ...` and their runners.
//! anyhow is used only here, at the CLI edge.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use crate::archive::{self, ArchiveFormat};
use crate::bundle;
use crate::digest::{hash_reader, Digest};
use crate::platform::Platform;
use crate::pull::{self, PullOptions};
use crate::registry::{lookup_credentials, ClientOptions, Credentials};
use crate::store::{ImageEntry, Store};
use crate::template::{self, TemplateFormat};
use crate::unpack::{self, ApplyOptions};
use crate::zfs_base;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry (v2 API) into the store.
    Pull {
        /// Image reference, e.g. `ubuntu:22.04`, `registry:5000/app@sha256:...`.
        reference: String,
        /// Platform to pick from a multi-arch index.
        #[arg(long, default_value = crate::platform::HOST)]
        platform: String,
        /// Verify TLS; `--tls-verify=false` also allows plain http.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        tls_verify: bool,
        #[arg(long, short = 'u')]
        username: Option<String>,
        #[arg(long, short = 'p', requires = "username")]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long, requires = "username", conflicts_with = "password")]
        password_stdin: bool,
        /// Credentials file (auth.json format); default: the containers/docker ones.
        #[arg(long)]
        authfile: Option<PathBuf>,
        /// certs.d-style directory: `<DIR>/<host[:port]>/*.crt` (CAs), `*.cert` + `*.key` (client).
        #[arg(long, value_name = "DIR")]
        cert_dir: Option<PathBuf>,
        /// No progress bars.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Parallel layer downloads.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Attempts per request on transient errors.
        #[arg(long, default_value_t = 4)]
        retries: u32,
    },
    /// List images in the store.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        #[arg(long)]
        show_layers: bool,
    },
    /// Show an image as JSON.
    Inspect {
        reference: String,
        /// Print the image configuration.
        #[arg(long)]
        config: bool,
        /// Print the layer descriptors.
        #[arg(long)]
        layers: bool,
    },
    /// Remove image names; blobs no longer referenced are garbage collected.
    #[command(alias = "rm")]
    Remove {
        #[arg(required = true)]
        references: Vec<String>,
        /// Remove even if a container uses the image.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Delete blobs that no image references (garbage collection).
    #[command(alias = "gc")]
    Prune,
    /// Import an OCI archive, a docker-archive or an OCI layout directory.
    Import {
        path: PathBuf,
        /// Name to store the image under.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = crate::platform::HOST)]
        platform: String,
    },
    /// Write an image to an archive file.
    Export {
        reference: String,
        #[arg(long, short = 'o')]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "oci-archive")]
        format: ArchiveFormat,
    },
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Unpack an image's layers into DIR (a rootfs), or with --zfs once into
    /// a ZFS base dataset + `@__base__` snapshot that Proxmox guests clone.
    Unpack {
        reference: String,
        #[arg(required_unless_present = "zfs")]
        dir: Option<PathBuf>,
        /// Do not set owners from the layers (default: set them when root).
        #[arg(long)]
        no_chown: bool,
        /// Unpack into `<dataset>/basevol-<digest>-disk-0` and snapshot it
        /// (idempotent); prints the snapshot to clone.
        #[arg(long, conflicts_with_all = ["dir", "no_chown"])]
        zfs: bool,
        /// Parent dataset for --zfs (default: storage.pool/dataset of the nexcage config).
        #[arg(long, requires = "zfs", value_name = "POOL[/DATASET]")]
        dataset: Option<String>,
        /// For unprivileged Proxmox guests: owners shifted by 100000 (a
        /// separate `...u-disk-0` base). Default: the config's `unprivileged`.
        #[arg(long, requires = "zfs", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
        unprivileged: Option<bool>,
    },
    /// Write Proxmox container templates of an image: `<stem>.tar`, an OCI
    /// archive `pct create` takes on Proxmox VE >= 9.1, and `<stem>.tar.zst`,
    /// a rootfs tarball for older releases. Prints the paths written.
    Template {
        reference: String,
        /// Directory to write into.
        #[arg(long, default_value = ".", value_name = "DIR")]
        output_dir: PathBuf,
        /// Which file(s) to write.
        #[arg(long, value_enum, default_value = "both")]
        format: TemplateFormat,
        /// File name stem (default: like Proxmox's OCI pull, e.g. `nginx_latest`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a runnable OCI bundle: DIR/rootfs and DIR/config.json.
    Bundle {
        reference: String,
        dir: PathBuf,
        #[arg(long)]
        no_chown: bool,
    },
}

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

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Number and size of blobs, referenced and not.
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
}

/// Name of the optional file in the store dir listing image references in
/// use by containers, one per line (used by [`run_image`]).
pub const IN_USE_FILE: &str = "in-use";

/// Run an image command. Images named in `<store_dir>/in-use` count as used
/// by containers (for `remove`); use [`run_image_with`] to supply a callback.
pub fn run_image(cmd: ImageCommand, store_dir: &Path) -> anyhow::Result<i32> {
    let listed: Vec<String> = std::fs::read_to_string(store_dir.join(IN_USE_FILE))
        .map(|s| {
            s.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let store = Store::open(store_dir)?;
    let resolved: Vec<String> = listed
        .iter()
        .filter_map(|r| store.resolve(r).ok())
        .map(|e| e.name)
        .chain(listed.iter().cloned())
        .collect();
    run_image_with(cmd, store_dir, &|name: &str| {
        resolved.iter().any(|r| r == name)
    })
}

fn human(n: u64) -> String {
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

fn image_summary(
    store: &Store,
    e: &ImageEntry,
    with_layers: bool,
) -> anyhow::Result<serde_json::Value> {
    let m = store.image_manifest(e)?;
    let cfg = store.config(&m)?;
    let size: u64 = m.config().size() + m.layers().iter().map(|l| l.size()).sum::<u64>();
    let mut v = json!({
        "name": e.name,
        "digest": e.descriptor.digest().to_string(),
        "mediaType": e.descriptor.media_type().to_string(),
        "size": size,
        "created": cfg.created(),
        "os": cfg.os().to_string(),
        "architecture": cfg.architecture().to_string(),
        "layerCount": m.layers().len(),
    });
    if with_layers {
        v["layers"] = json!(m.layers().iter().map(|l| json!({
            "digest": l.digest().to_string(), "size": l.size(), "mediaType": l.media_type().to_string()
        })).collect::<Vec<_>>());
    }
    Ok(v)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn credentials(
    reference: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    authfile: Option<&Path>,
) -> anyhow::Result<Option<Credentials>> {
    if let Some(u) = username {
        let p = if password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        } else {
            password.context("--username needs --password or --password-stdin")?
        };
        return Ok(Some(Credentials {
            username: u,
            password: p,
        }));
    }
    let r = crate::reference::Reference::parse(reference)?;
    Ok(lookup_credentials(&r.registry, authfile)?)
}

/// Run an image command; `in_use(name)` says whether a container uses the
/// image stored under `name` (checked by `remove` unless `--force`).
pub fn run_image_with(
    cmd: ImageCommand,
    store_dir: &Path,
    in_use: &dyn Fn(&str) -> bool,
) -> anyhow::Result<i32> {
    let store = Store::open(store_dir)
        .with_context(|| format!("opening image store {}", store_dir.display()))?;
    match cmd {
        ImageCommand::Pull {
            reference,
            platform,
            tls_verify,
            username,
            password,
            password_stdin,
            authfile,
            cert_dir,
            quiet,
            jobs,
            retries,
        } => {
            let creds = credentials(
                &reference,
                username,
                password,
                password_stdin,
                authfile.as_deref(),
            )?;
            let opts = PullOptions {
                platform: Platform::parse(&platform)?,
                client: ClientOptions {
                    tls_verify,
                    credentials: creds,
                    attempts: retries,
                    cert_dir,
                },
                quiet,
                jobs,
            };
            let r = pull::pull(&store, &reference, &opts)?;
            eprintln!(
                "pulled {} ({} blobs, {}; {} already present)",
                r.name,
                r.downloaded_blobs,
                human(r.downloaded_bytes),
                r.reused_blobs
            );
            println!("{}", r.manifest_digest);
        }
        ImageCommand::List {
            format,
            show_layers,
        } => {
            let mut rows = Vec::new();
            for e in store.images()? {
                rows.push(image_summary(&store, &e, show_layers)?);
            }
            match format {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => {
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "{:<50} {:<14} {:>10}  CREATED",
                        "NAME", "DIGEST", "SIZE"
                    )?;
                    for r in &rows {
                        let d = r["digest"].as_str().unwrap_or("");
                        writeln!(
                            out,
                            "{:<50} {:<14} {:>10}  {}",
                            r["name"].as_str().unwrap_or(""),
                            d.strip_prefix("sha256:")
                                .unwrap_or(d)
                                .get(..12)
                                .unwrap_or(d),
                            human(r["size"].as_u64().unwrap_or(0)),
                            r["created"].as_str().unwrap_or("-")
                        )?;
                        if let Some(ls) = r["layers"].as_array() {
                            for l in ls {
                                writeln!(
                                    out,
                                    "    {} {:>10}",
                                    l["digest"].as_str().unwrap_or(""),
                                    human(l["size"].as_u64().unwrap_or(0))
                                )?;
                            }
                        }
                    }
                }
            }
        }
        ImageCommand::Inspect {
            reference,
            config,
            layers,
        } => {
            let e = store.resolve(&reference)?;
            let m = store.image_manifest(&e)?;
            let cfg = store.config(&m)?;
            let v = match (config, layers) {
                (true, false) => serde_json::to_value(&cfg)?,
                (false, true) => serde_json::to_value(m.layers())?,
                (true, true) => json!({"config": cfg, "layers": m.layers()}),
                (false, false) => {
                    let mut v = image_summary(&store, &e, true)?;
                    v["config"] = serde_json::to_value(cfg.config())?;
                    v["manifest"] = serde_json::to_value(&m)?;
                    v
                }
            };
            print_json(&v)?;
        }
        ImageCommand::Remove { references, force } => {
            for r in &references {
                let e = store.resolve(r)?;
                if !force && (in_use(&e.name) || in_use(r)) {
                    return Err(crate::Error::InUse(e.name).into());
                }
                store.remove_ref(&e.name)?;
                println!("removed {}", e.name);
            }
            if store.gc(false)?.is_none() {
                eprintln!("blobs not collected now: another command is writing to the store (run `image prune` later)");
            }
            collect_bases(&store)?;
        }
        ImageCommand::Prune => {
            if let Some(r) = store.gc(true)? {
                println!(
                    "removed {} blobs, freed {}",
                    r.removed_blobs,
                    human(r.freed_bytes)
                );
            }
            collect_bases(&store)?;
        }
        ImageCommand::Import {
            path,
            name,
            platform,
        } => {
            for i in archive::import(&store, &path, name.as_deref(), &Platform::parse(&platform)?)?
            {
                println!("{} {}", i.name, i.manifest_digest);
            }
        }
        ImageCommand::Export {
            reference,
            output,
            format,
        } => {
            let e = store.resolve(&reference)?;
            archive::export(&store, &e, &output, format)?;
        }
        ImageCommand::Tag { source, target } => {
            // Keeps gc from collecting the blobs between lookup and naming.
            let _w = store.writer_lock()?;
            let e = store.resolve(&source)?;
            let t = crate::reference::Reference::parse(&target)?.to_string();
            store.set_ref(&t, &e.descriptor)?;
        }
        ImageCommand::Unpack {
            reference,
            zfs: true,
            dataset,
            unprivileged,
            ..
        } => {
            let parent = dataset.context(
                "--zfs needs --dataset POOL[/DATASET] or storage.pool in the nexcage config",
            )?;
            let e = store.resolve(&reference)?;
            let shift = unprivileged.unwrap_or(false).then_some(zfs_base::PROXMOX_SHIFT);
            let b = zfs_base::ensure(&store, &e, &nexcage_zfs::Zfs::new(), &parent, shift)?;
            let how = if b.created { "unpacked into" } else { "already in" };
            eprintln!("{} {how} {} ({})", e.name, b.dataset, b.mountpoint.display());
            println!("{}", b.snapshot);
        }
        ImageCommand::Unpack {
            reference,
            dir: Some(dir),
            no_chown,
            ..
        } => {
            let e = store.resolve(&reference)?;
            let mut o = ApplyOptions::default();
            o.chown &= !no_chown;
            let s = unpack::unpack_rootfs(&store, &e, &dir, &o)?;
            eprintln!(
                "unpacked {} entries ({}) into {}",
                s.entries,
                human(s.bytes),
                dir.display()
            );
        }
        ImageCommand::Unpack { .. } => bail!("image unpack needs DIR or --zfs"),
        ImageCommand::Template {
            reference,
            output_dir,
            format,
            name,
        } => {
            let e = store.resolve(&reference)?;
            for p in template::write(&store, &e, &output_dir, format, name.as_deref())? {
                println!("{}", p.display());
            }
        }
        ImageCommand::Bundle {
            reference,
            dir,
            no_chown,
        } => {
            let e = store.resolve(&reference)?;
            let mut o = ApplyOptions::default();
            o.chown &= !no_chown;
            bundle::create_bundle(&store, &e, &dir, &o)?;
            eprintln!("bundle for {} in {}", e.name, dir.display());
        }
    }
    Ok(0)
}

/// Destroys the ZFS bases of images that are gone (only when there are any,
/// so hosts without ZFS never run `zfs`).
fn collect_bases(store: &Store) -> anyhow::Result<()> {
    if zfs_base::list(store)?.is_empty() {
        return Ok(());
    }
    for snap in zfs_base::collect(store, &nexcage_zfs::Zfs::new())? {
        println!("destroyed base {snap}");
    }
    Ok(())
}

/// Which images use each blob.
fn users(store: &Store) -> anyhow::Result<HashMap<Digest, Vec<String>>> {
    let mut map: HashMap<Digest, Vec<String>> = HashMap::new();
    for e in store.images()? {
        let md = e.digest()?;
        map.entry(md.clone()).or_default().push(e.name.clone());
        if let Ok(m) = store.manifest(&md) {
            map.entry(Digest::try_from(m.config().digest())?)
                .or_default()
                .push(e.name.clone());
            for l in m.layers() {
                let v = map.entry(Digest::try_from(l.digest())?).or_default();
                if !v.contains(&e.name) {
                    v.push(e.name.clone());
                }
            }
        }
    }
    Ok(map)
}

pub fn run_layer(cmd: LayerCommand, store_dir: &Path) -> anyhow::Result<i32> {
    let store = Store::open(store_dir)?;
    match cmd {
        LayerCommand::List { format } => {
            // digest -> (size, media type, images)
            let mut layers: BTreeMap<String, (u64, String, Vec<String>)> = BTreeMap::new();
            for e in store.images()? {
                let m = store.image_manifest(&e)?;
                for l in m.layers() {
                    let ent = layers.entry(l.digest().to_string()).or_insert((
                        l.size(),
                        l.media_type().to_string(),
                        Vec::new(),
                    ));
                    if !ent.2.contains(&e.name) {
                        ent.2.push(e.name.clone());
                    }
                }
            }
            match format {
                OutputFormat::Json => print_json(
                    &layers
                        .iter()
                        .map(|(d, (s, mt, imgs))| json!({"digest": d, "size": s, "mediaType": mt, "images": imgs}))
                        .collect::<Vec<_>>(),
                )?,
                OutputFormat::Table => {
                    println!("{:<71} {:>10}  IMAGES", "DIGEST", "SIZE");
                    for (d, (s, _, imgs)) in &layers {
                        println!("{d:<71} {:>10}  {}", human(*s), imgs.join(","));
                    }
                }
            }
            Ok(0)
        }
        LayerCommand::Validate { reference } => {
            let blobs: Vec<(Digest, Option<u64>)> = match &reference {
                Some(r) => {
                    let e = store.resolve(r)?;
                    let md = e.digest()?;
                    let mut v = vec![(md.clone(), Some(e.descriptor.size()))];
                    let m = store.manifest(&md)?;
                    v.push((
                        Digest::try_from(m.config().digest())?,
                        Some(m.config().size()),
                    ));
                    for l in m.layers() {
                        v.push((Digest::try_from(l.digest())?, Some(l.size())));
                    }
                    v
                }
                None => store.blobs()?.into_keys().map(|d| (d, None)).collect(),
            };
            let mut bad = 0;
            for (d, size) in &blobs {
                let problem = match store.open_blob(d) {
                    Err(e) => Some(e.to_string()),
                    Ok(f) => {
                        let (got, n) =
                            hash_reader(std::io::BufReader::with_capacity(256 * 1024, f))
                                .with_context(|| format!("reading blob {d}"))?;
                        if &got != d {
                            Some(format!("content hashes to {got}"))
                        } else if size.is_some_and(|s| s != n) {
                            Some(format!("size {n}, manifest says {}", size.unwrap_or(0)))
                        } else {
                            None
                        }
                    }
                };
                if let Some(p) = problem {
                    bad += 1;
                    println!("CORRUPT {d}: {p}");
                }
            }
            println!("{} blobs checked, {} corrupt", blobs.len(), bad);
            Ok(if bad > 0 { 1 } else { 0 })
        }
    }
}

pub fn run_cache(cmd: CacheCommand, store_dir: &Path) -> anyhow::Result<i32> {
    let store = Store::open(store_dir)?;
    match cmd {
        CacheCommand::Stats { format } => {
            let blobs = store.blobs()?;
            let refd = store.referenced()?;
            let (mut rn, mut rb, mut un, mut ub) = (0u64, 0u64, 0u64, 0u64);
            for (d, s) in &blobs {
                if refd.contains(d) {
                    rn += 1;
                    rb += s;
                } else {
                    un += 1;
                    ub += s;
                }
            }
            let v = json!({
                "path": store.root().display().to_string(),
                "images": store.images()?.len(),
                "blobs": rn + un, "bytes": rb + ub,
                "referencedBlobs": rn, "referencedBytes": rb,
                "unreferencedBlobs": un, "unreferencedBytes": ub,
            });
            match format {
                OutputFormat::Json => print_json(&v)?,
                OutputFormat::Table => {
                    println!("store:         {}", store.root().display());
                    println!("images:        {}", v["images"]);
                    println!(
                        "blobs:         {} entries, {} bytes ({})",
                        rn + un,
                        rb + ub,
                        human(rb + ub)
                    );
                    println!("referenced:    {rn} entries, {rb} bytes");
                    println!("unreferenced:  {un} entries, {ub} bytes");
                }
            }
        }
        CacheCommand::List { format } => {
            let u = users(&store)?;
            let rows: Vec<_> = store
                .blobs()?
                .into_iter()
                .map(|(d, s)| {
                    let imgs = u.get(&d).cloned().unwrap_or_default();
                    json!({"digest": d.to_string(), "size": s, "images": imgs})
                })
                .collect();
            match format {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => {
                    println!("{:<71} {:>12}  IMAGES", "DIGEST", "BYTES");
                    for r in &rows {
                        let imgs: Vec<&str> = r["images"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                            .unwrap_or_default();
                        println!(
                            "{:<71} {:>12}  {}",
                            r["digest"].as_str().unwrap_or(""),
                            r["size"],
                            if imgs.is_empty() {
                                "-".to_string()
                            } else {
                                imgs.join(",")
                            }
                        );
                    }
                }
            }
        }
        CacheCommand::Clear { all } => {
            if all {
                for e in store.images()? {
                    store.remove_ref(&e.name)?;
                }
            }
            match store.gc(true)? {
                Some(r) => println!(
                    "removed {} blobs ({} bytes), {} temp files",
                    r.removed_blobs, r.freed_bytes, r.removed_temp
                ),
                None => bail!("store busy"),
            }
        }
    }
    Ok(0)
}
