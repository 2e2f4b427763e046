//! `nexcage list`: all containers under --root.

use anyhow::Result;

use super::Ctx;
use crate::container::{state_json, status, Container};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Only containers with this status
    #[arg(long, value_name = "STATUS", value_parser = ["creating", "created", "running", "paused", "stopped"])]
    pub status: Option<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    // A container deleted meanwhile simply drops out of the list.
    let mut recs: Vec<_> = store.ids()?.iter()
        .filter_map(|id| Container::load_from(&store, id).ok())
        .map(|c| c.record().clone())
        .collect();
    if let Some(want) = &a.status {
        recs.retain(|r| status(r).to_string() == *want);
    }
    let owner = |r: &crate::state::Record| store.owner(&r.id).unwrap_or_default();
    if a.quiet {
        for r in &recs {
            println!("{}", r.id);
        }
    } else if a.format == "json" {
        // runc's state objects, plus what an administrator looks for.
        let v: Vec<_> = recs.iter().map(|r| {
            let mut v = state_json(r);
            v["owner"] = serde_json::json!(owner(r));
            if let Some(i) = r.annotations.get(crate::admin::IMAGE_ANNOTATION) {
                v["image"] = serde_json::json!(i);
            }
            if let Some(vmid) = r.vmid() {
                v["vmid"] = serde_json::json!(vmid);
            }
            v["ports"] = serde_json::json!(crate::network::published(&r.annotations));
            v
        }).collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let header = ["ID", "PID", "STATUS", "BACKEND", "VMID", "IMAGE", "BUNDLE", "CREATED", "OWNER", "PORTS"];
        super::table::print(&header, &["PID", "VMID"], recs.iter().map(|r| {
            let vmid = r.vmid().map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let image = r.annotations.get(crate::admin::IMAGE_ANNOTATION).map(String::as_str).unwrap_or("-");
            vec![r.id.clone(), state_json(r)["pid"].to_string(), status(r).to_string(), r.backend.to_string(), vmid,
                image.to_string(), r.bundle.display().to_string(), r.created.to_string(), owner(r),
                crate::network::published(&r.annotations).join(",")]
        }));
    }
    Ok(0)
}
