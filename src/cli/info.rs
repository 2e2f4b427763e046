//! `nexcage info NAME`: one container in detail: backend (and VMID/dataset
//! when the backend has them), image, resources asked for and enforced
//! (read back from the cgroup), pids, uptime, network and ports, last exit.

use anyhow::Result;
use serde_json::Value;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Container name
    pub name: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let v = crate::admin::info::collect(ctx, &a.name)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        o => o.to_string(),
    };
    for (label, key) in [("Name", "id"), ("Status", "status"), ("Backend", "backend"), ("Routed by", "routedBy"),
        ("VMID", "vmid"), ("Dataset", "dataset"), ("Image", "image"), ("Bundle", "bundle"), ("Created", "created"),
        ("Pid", "pid"), ("Uptime (s)", "uptimeSeconds"), ("Auto-start", "autoStart"), ("Log", "log")] {
        println!("{label:<12} {}", s(key));
    }
    if let Some(d) = v.get("disk") {
        println!("{:<12} used {} of {}", "Disk", d["used"].as_str().unwrap_or("-"), d["refquota"].as_str().unwrap_or("-"));
    }
    if let Some(p) = v["pids"].as_array() {
        println!("{:<12} {}", "Processes", p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "));
    }
    if let Some(e) = v["enforced"].as_object() {
        for (k, x) in e {
            println!("{:<12} {k} = {}", "Enforced", if x.is_null() { "unlimited".into() } else { x.to_string() });
        }
    }
    if let Some(n) = v.get("network") {
        let f = |k: &str| n[k].as_str().unwrap_or("-").to_string();
        println!("{:<12} {} on {} via {} ({} {}, host end {})", "Network", f("address"), f("bridge"), f("gateway"), f("ifname"), f("hwaddr"), f("hostInterface"));
        let ports: Vec<_> = n["ports"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
        println!("{:<12} {}", "Ports", if ports.is_empty() { "-".to_string() } else { ports.join(", ") });
    }
    if let Some(e) = v.get("exit") {
        println!("{:<12} code {} at {}", "Last exit", e["exitCode"], e["finishedAt"].as_str().unwrap_or("-"));
    }
    Ok(0)
}
