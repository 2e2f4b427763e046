//! `nexcage events`: resource statistics as runc's event stream.

use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Container id
    pub id: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    if secs <= 0.0 {
        return Err("duration must be positive".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is too long"))
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    loop {
        let data = Container::load_from(&store, &a.id)?.stats(ctx)?;
        println!("{}", serde_json::json!({"type": "stats", "id": a.id, "data": data}));
        if a.stats {
            return Ok(0);
        }
        std::thread::sleep(a.interval);
    }
}
