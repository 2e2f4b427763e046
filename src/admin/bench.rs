//! `nexcage performance benchmark`: create / start / wait for exit /
//! delete cycles of a throwaway container with the configured backend,
//! each step through the real binary (what an engine sees), timed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::context::Ctx;

/// Median and spread (min, max) of one step over the cycles, in ms.
#[derive(serde::Serialize)]
pub struct StepTimes {
    pub step: &'static str,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// A bundle whose rootfs borrows the host's binaries read-only (`/usr`
/// and friends bind-mounted, merged-usr symlinks copied) and runs
/// `/bin/true`; `spec` is `nexcage spec`'s default.
pub fn host_bundle(dir: &Path, mut spec: Value) -> Result<()> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    for d in ["usr", "bin", "sbin", "lib", "lib32", "lib64", "etc"] {
        let host = Path::new("/").join(d);
        let Ok(meta) = std::fs::symlink_metadata(&host) else { continue };
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&host)?, rootfs.join(d))?;
        } else if meta.is_dir() {
            std::fs::create_dir_all(rootfs.join(d))?;
            if let Some(m) = spec["mounts"].as_array_mut() {
                m.push(json!({"destination": format!("/{d}"), "type": "bind", "source": host, "options": ["rbind", "ro"]}));
            }
        }
    }
    spec["process"]["args"] = json!(["/bin/true"]);
    spec["process"]["terminal"] = json!(false);
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?).context("writing config.json")?;
    Ok(())
}

/// Runs `nexcage ARGS`; its stderr goes to the file `err` (a pipe would
/// be inherited by the container's process and never reach EOF).
fn step(ctx: &Ctx, err: &Path, args: &[&str]) -> Result<Duration> {
    let f = std::fs::File::create(err).with_context(|| format!("creating {}", err.display()))?;
    let t = Instant::now();
    let s = super::monitor::nexcage(ctx)?.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(f).status().context("running nexcage")?;
    let took = t.elapsed();
    if !s.success() {
        bail!("nexcage {}: {}", args.join(" "), std::fs::read_to_string(err).unwrap_or_default().trim());
    }
    Ok(took)
}

/// Waits (up to 60 s) until `id` has stopped; the time it took.
fn wait_stopped(ctx: &Ctx, id: &str) -> Result<Duration> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let o = super::monitor::nexcage(ctx)?.args(["state", id]).output()?;
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["status"] == "stopped" {
            return Ok(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("{id} did not stop within 60 s")
}

fn summary(step: &'static str, mut v: Vec<Duration>) -> StepTimes {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = v.len();
    let median = if n % 2 == 1 { ms(v[n / 2]) } else { (ms(v[n / 2 - 1]) + ms(v[n / 2])) / 2.0 };
    StepTimes { step, median_ms: median, min_ms: v.first().map_or(0.0, |d| ms(*d)), max_ms: v.last().map_or(0.0, |d| ms(*d)) }
}

/// Runs `cycles` (>= 1) cycles on `bundle`; the container is deleted even
/// when a step fails. Per step and in total: median, min, max.
pub fn run(ctx: &Ctx, bundle: &Path, cycles: u32) -> Result<Vec<StepTimes>> {
    let bundle: PathBuf = std::path::absolute(bundle)?;
    let b = bundle.to_str().context("bundle path is not UTF-8")?;
    let err = std::env::temp_dir().join(format!("nexcage-bench-{}.err", std::process::id()));
    let r = cycles_on(ctx, b, cycles, &err);
    let _ = std::fs::remove_file(&err);
    r
}

fn cycles_on(ctx: &Ctx, b: &str, cycles: u32, err: &Path) -> Result<Vec<StepTimes>> {
    let names = ["create", "start", "run to exit", "delete", "cycle"];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for i in 0..cycles.max(1) {
        let id = format!("nexcage-bench-{}-{i}", std::process::id());
        let cycle = || -> Result<[Duration; 4]> {
            Ok([step(ctx, err, &["create", "--bundle", b, &id])?, step(ctx, err, &["start", &id])?, wait_stopped(ctx, &id)?, step(ctx, err, &["delete", &id])?])
        };
        let r = cycle();
        if r.is_err() {
            let _ = step(ctx, err, &["delete", "--force", &id]);
        }
        let r = r?;
        for (k, d) in r.iter().enumerate() {
            times[k].push(*d);
        }
        times[4].push(r.iter().sum());
    }
    Ok(names.into_iter().zip(times).map(|(n, v)| summary(n, v)).collect())
}
