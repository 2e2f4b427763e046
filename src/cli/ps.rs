//! `nexcage ps`: the processes of a container.

use anyhow::{bail, Result};

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id
    pub id: String,
    /// Options passed to ps(1) for the table format
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let pids = Container::load(ctx, &a.id)?.pids(ctx)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let ps_args = if a.ps_args.is_empty() { vec!["-ef".to_string()] } else { a.ps_args };
    let out = std::process::Command::new("ps").args(&ps_args).output()?;
    if !out.status.success() {
        bail!("ps {}: {}", ps_args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header.split_whitespace().position(|c| c == "PID");
    let Some(pid_col) = pid_col else { bail!("ps output has no PID column") };
    println!("{header}");
    for l in lines {
        let pid = l.split_whitespace().nth(pid_col).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}
