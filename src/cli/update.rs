//! `nexcage update`: change a running container's resource limits.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON file with linux.resources, or - for stdin
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 unlimited; 0 or "" unchanged)
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory: Option<i64>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory_swap: Option<i64>,
    /// CPU shares (relative weight; runc spells it --cpu-share)
    #[arg(long, alias = "cpu-share", value_parser = parse_num::<u64>)]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long, allow_hyphen_values = true, value_parser = parse_num::<i64>)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long, value_parser = parse_num::<u64>)]
    pub cpu_period: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long, value_parser = parse_num::<u64>)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long, allow_hyphen_values = true, value_parser = parse_num::<i64>)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs allowed (e.g. 0-3,5; "" unchanged)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 unlimited; 0 unchanged)
    #[arg(long, allow_hyphen_values = true, value_parser = parse_num::<i64>)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10..1000)
    #[arg(long, value_parser = parse_num::<u16>)]
    pub blkio_weight: Option<u16>,
    /// Container id
    pub id: String,
}

/// A number flag; "" is 0, which (as in runc) leaves the value unchanged.
fn parse_num<T: std::str::FromStr + Default>(s: &str) -> Result<T, String> {
    if s.is_empty() {
        return Ok(T::default());
    }
    s.parse().map_err(|_| format!("invalid number {s:?}"))
}

/// Bytes, with an optional k/m/g/t suffix; "" is 0 (unchanged, as in runc).
fn parse_size(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: i64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    n.checked_mul(mul).ok_or_else(|| format!("size {s:?} is too large"))
}

/// Sets `path` inside `v`, creating objects on the way; fails when the
/// resources file has a non-object where a flag needs to go.
fn set(v: &mut Value, path: &[&str], x: Value) -> Result<()> {
    let (last, parents) = path.split_last().context("empty path")?;
    let mut cur = v;
    for p in parents {
        cur = cur
            .as_object_mut()
            .with_context(|| format!("resources: {p} is not an object"))?
            .entry(p.to_string())
            .or_insert(json!({}));
    }
    cur.as_object_mut()
        .with_context(|| format!("resources: cannot set {} in a non-object", path.join(".")))?
        .insert(last.to_string(), x);
    Ok(())
}

fn resources(a: &Args) -> Result<LinuxResources> {
    let mut v: Value = match &a.resources {
        Some(p) => {
            let mut s = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut s)?;
            } else {
                s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            }
            serde_json::from_str(&s).context("resources: malformed JSON")?
        }
        None => json!({}),
    };
    if let Some(x) = a.memory { set(&mut v, &["memory", "limit"], json!(x))?; }
    if let Some(x) = a.memory_reservation { set(&mut v, &["memory", "reservation"], json!(x))?; }
    if let Some(x) = a.memory_swap { set(&mut v, &["memory", "swap"], json!(x))?; }
    if let Some(x) = a.cpu_shares { set(&mut v, &["cpu", "shares"], json!(x))?; }
    if let Some(x) = a.cpu_quota { set(&mut v, &["cpu", "quota"], json!(x))?; }
    if let Some(x) = a.cpu_period { set(&mut v, &["cpu", "period"], json!(x))?; }
    if let Some(x) = a.cpu_rt_period { set(&mut v, &["cpu", "realtimePeriod"], json!(x))?; }
    if let Some(x) = a.cpu_rt_runtime { set(&mut v, &["cpu", "realtimeRuntime"], json!(x))?; }
    if let Some(x) = &a.cpuset_cpus { set(&mut v, &["cpu", "cpus"], json!(x))?; }
    if let Some(x) = &a.cpuset_mems { set(&mut v, &["cpu", "mems"], json!(x))?; }
    if let Some(x) = a.pids_limit { set(&mut v, &["pids", "limit"], json!(x))?; }
    if let Some(x) = a.blkio_weight { set(&mut v, &["blockIO", "weight"], json!(x))?; }
    if v.as_object().is_none_or(|o| o.is_empty()) {
        bail!("update: nothing to change (give --resources or a limit flag)");
    }
    serde_json::from_value(v).context("resources: not a valid linux.resources object")
}

/// The container first, as runc: `update NOSUCH` says "does not exist".
pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let c = Container::load(ctx, &a.id)?;
    c.update(ctx, &resources(&a)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{parse_num, parse_size, set};
    use serde_json::json;

    #[test]
    fn set_builds_and_refuses_non_objects() {
        let mut v = json!({});
        set(&mut v, &["memory", "limit"], json!(5)).unwrap();
        assert_eq!(v, json!({"memory": {"limit": 5}}));
        let mut bad = json!({"memory": 5});
        assert!(set(&mut bad, &["memory", "limit"], json!(1)).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("-1"), Ok(-1));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size(""), Ok(0));
    }

    #[test]
    fn empty_number_is_zero() {
        assert_eq!(parse_num::<u64>(""), Ok(0));
        assert_eq!(parse_num::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_num::<i64>("-1"), Ok(-1));
        assert!(parse_num::<u64>("-1").is_err());
    }
}
