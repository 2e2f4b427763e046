//! The cases, one module per area. Each case is a small function named in
//! its module's `cases()` table as `area.topic[.detail]`.

pub mod cgroups;
pub mod fs;
pub mod hooks;
pub mod lifecycle;
pub mod misc;
pub mod ns;
pub mod parity;
pub mod process;

use crate::bundle::Bundle;
use crate::ctx::{Created, Ctx, Opts, Skip};
use anyhow::{bail, Result};
use std::time::Duration;

/// A long-running init with handlers, so that signals reach it inside its
/// own pid namespace (an init without a handler ignores them): TERM -> exit 3,
/// USR1 -> 4, USR2 -> 5, HUP -> 6.
pub const TRAP_LOOP: &str =
    "trap 'exit 3' TERM; trap 'exit 4' USR1; trap 'exit 5' USR2; trap 'exit 6' HUP; while :; do sleep 0.05; done";

pub fn skip(reason: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Skip(reason.into()))
}

/// A bundle whose process sleeps (ignores TERM as a pid-namespace init).
pub fn sleeper(ctx: &mut Ctx) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/sleep", "1000"]);
    Ok(b)
}

/// A bundle whose process loops with signal traps (see TRAP_LOOP).
pub fn trapper(ctx: &mut Ctx) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    b.sh(TRAP_LOOP);
    Ok(b)
}

/// Creates and starts a bundle; waits until state says running.
pub fn started(ctx: &mut Ctx, b: &Bundle) -> Result<Created> {
    let c = ctx.create(b)?;
    ctx.start(&c.id)?;
    ctx.wait_status(&c.id, "running")?;
    Ok(c)
}

/// A running sleeper container, e.g. to join its namespaces.
pub fn holder(ctx: &mut Ctx) -> Result<Created> {
    let b = sleeper(ctx)?;
    started(ctx, &b)
}

/// The runtime must refuse this bundle, at create or at start, with an error
/// message, and leave no running process behind. Returns the error text.
pub fn expect_refused(ctx: &mut Ctx, b: &Bundle, what: &str) -> Result<String> {
    let (c, ok) = ctx.try_create(b, &Opts::default())?;
    if c.out.timed_out {
        bail!("create timed out: {}", c.out.describe());
    }
    let err_text = if !ok {
        c.out.stderr.clone()
    } else {
        let s = ctx.rt(&["start", &c.id])?;
        if s.ok() {
            let pid = c.pid;
            let alive = crate::sys::alive(pid);
            bail!("{what}: create and start both succeeded (process {pid} {})", if alive { "running" } else { "exited" });
        }
        format!("{}{}", c.out.stderr, s.stderr)
    };
    if err_text.trim().is_empty() {
        bail!("{what}: refused, but without any error message on stderr");
    }
    if c.pid > 0 && !crate::sys::wait_dead(c.pid, Duration::from_secs(3)) {
        bail!("{what}: refused, but process {} is still alive", c.pid);
    }
    // whatever is left must be deletable and then gone
    let _ = ctx.rt(&["delete", "--force", &c.id]);
    if ctx.rt(&["state", &c.id])?.ok() {
        bail!("{what}: after the failure and delete --force, state still finds {}", c.id);
    }
    Ok(err_text.trim().to_string())
}

/// Short one-line excerpt of an error text for reports.
pub fn excerpt(s: &str) -> String {
    let l = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    l.chars().take(160).collect()
}

/// Waits until the container's stdout has at least `n` TAP result lines
/// (for checkers that end in `action.sleep` so the harness can look from
/// outside while they run), then returns the "not ok" lines as an error.
pub fn wait_tap(c: &Created, n: usize) -> Result<()> {
    let t = std::time::Instant::now();
    loop {
        let out = c.stdout();
        let results: Vec<&str> = out.lines().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
        let fails: Vec<&str> = results.iter().copied().filter(|l| l.starts_with("not ok")).collect();
        if !fails.is_empty() {
            bail!("{}", fails.join("; "));
        }
        if results.len() >= n {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("checker printed {} of {n} results: {out:?} {}", results.len(), excerpt(&c.stderr()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
