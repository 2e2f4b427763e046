//! Tasks: UPIDs, their logs (`TASK OK` / `TASK ERROR: msg` last line) and
//! an optional delay before they report `stopped`.

use crate::state::{now, now_ms, write_atomic, State};
use nexcage_pve::driver::Upid;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

fn file_name(upid: &str) -> String {
    upid.replace([':', '@', '!', '/'], "_")
}

/// Record a finished task and return its UPID. `error` = `TASK ERROR`.
/// `PVE_DOUBLE_TASK_DELAY_MS` keeps it "running" that long.
pub fn record(
    state: &State,
    kind: &str,
    id: &str,
    user: &str,
    lines: &[String],
    error: Option<&str>,
) -> String {
    let pstart =
        0x0100_0000 + SEQ.fetch_add(1, Ordering::Relaxed) + (now_ms() as u64 % 0x0010_0000) * 16;
    let upid = Upid {
        node: state.node.clone(),
        pid: std::process::id(),
        pstart,
        starttime: now(),
        kind: kind.into(),
        id: id.into(),
        user: user.into(),
    }
    .to_string();
    let mut log: Vec<String> = lines.to_vec();
    log.push(match error {
        Some(e) => format!("TASK ERROR: {e}"),
        None => "TASK OK".into(),
    });
    let delay: u128 = std::env::var("PVE_DOUBLE_TASK_DELAY_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let until = now_ms() + delay;
    let body = format!("{until}\n{}\n", log.join("\n"));
    if let Err(e) = write_atomic(
        &state.dir.join("tasks").join(file_name(&upid)),
        body.as_bytes(),
    ) {
        tracing::error!(error = %e, "cannot write task log");
    }
    upid
}

/// (running?, log lines) of a task, or None if unknown.
pub fn read(state: &State, upid: &str) -> Option<(bool, Vec<String>)> {
    let text = std::fs::read_to_string(state.dir.join("tasks").join(file_name(upid))).ok()?;
    let mut lines = text.lines();
    let until: u128 = lines.next()?.parse().ok()?;
    Some((now_ms() < until, lines.map(String::from).collect()))
}

/// `exitstatus` from the last log line.
pub fn exitstatus(lines: &[String]) -> String {
    match lines.last().map(String::as_str) {
        Some("TASK OK") => "OK".into(),
        Some(l) if l.starts_with("TASK ERROR: ") => l["TASK ERROR: ".len()..].to_string(),
        Some(l) if l.starts_with("TASK WARNINGS: ") => l["TASK ".len()..].to_string(),
        _ => "unexpected status".into(),
    }
}
