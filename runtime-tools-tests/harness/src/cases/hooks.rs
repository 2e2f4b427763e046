//! Hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): order,
//! state JSON on stdin, args/env, and what must follow a failing hook of
//! each kind, plus timeouts.
//!
//! Every hook runs `/bin/sh` (present on the host and in the busybox rootfs)
//! and writes into a host directory that is also bind-mounted at the same
//! absolute path inside the container, so hooks running in either the
//! runtime's or the container's namespaces leave their traces in one place.
//! Failing hooks read their stdin before exiting: a runtime that writes the
//! state to an already-closed pipe may die of SIGPIPE (crun 1.8.1 does, at
//! random), which would make those cases racy rather than about failure
//! handling.

use super::*;
use crate::bundle::Bundle;
use crate::suite::{case, Case};
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const KINDS: [&str; 6] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

pub fn cases() -> Vec<Case> {
    vec![
        case("hooks.order", "hooks run in lifecycle order: prestart, createRuntime, createContainer | startContainer, process, poststart | poststop", order),
        case("hooks.state_stdin", "every hook gets the container state JSON on stdin", state_stdin),
        case("hooks.args_env", "hook args (argv[0] included) and env are as configured", args_env),
        case("hooks.prestart.fail", "a failing prestart hook fails create; the program never runs", |c| fail_early(c, "prestart")),
        case("hooks.create_runtime.fail", "a failing createRuntime hook fails create; the program never runs", |c| fail_early(c, "createRuntime")),
        case("hooks.create_container.fail", "a failing createContainer hook fails create; the program never runs", |c| fail_early(c, "createContainer")),
        case("hooks.start_container.fail", "a failing startContainer hook fails start; the program never runs", |c| fail_early(c, "startContainer")),
        case("hooks.poststart.fail_continues", "a failing poststart hook is a warning: start succeeds, later hooks run", poststart_fail),
        case("hooks.poststop.fail_continues", "a failing poststop hook is a warning: delete succeeds, later hooks run", poststop_fail),
        case("hooks.timeout", "a hook that overruns its timeout fails the operation promptly", timeout),
    ]
}

/// The shared trace dir: `<bundle>/hk` on the host, same path inside.
fn trace_dir(b: &mut Bundle) -> Result<PathBuf> {
    let d = b.host_dir("hk")?;
    b.mount(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"]}));
    Ok(d)
}

fn hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
}

/// A hook that saves its stdin and appends its name to `order`.
fn tracer(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    hook(&format!("cat > {d}/{name}.json; echo {name} >> {d}/order"))
}

fn order_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("order")).unwrap_or_default().lines().map(String::from).collect()
}

fn add_all_tracers(b: &mut Bundle, d: &Path) {
    for k in KINDS {
        b.push(&format!("/hooks/{k}"), tracer(d, k));
    }
}

fn order(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = trace_dir(&mut b)?;
    add_all_tracers(&mut b, &d);
    b.sh(&format!("echo process >> {}/order", d.display()));
    let c = ctx.create(&b)?;
    let after_create = order_of(&d);
    ensure!(
        after_create == ["prestart", "createRuntime", "createContainer"],
        "after create the hooks ran as {after_create:?}, want [prestart, createRuntime, createContainer]"
    );
    ctx.start(&c.id)?;
    let after_start = order_of(&d);
    ensure!(after_start.iter().any(|x| x == "poststart"), "poststart had not run when start returned: {after_start:?}");
    ctx.wait(c.pid)?;
    let o = order_of(&d);
    let pos = |n: &str| o.iter().position(|x| x == n);
    ensure!(pos("startContainer").is_some() && pos("process").is_some(), "startContainer or the program did not run: {o:?}");
    ensure!(pos("startContainer") < pos("process"), "startContainer ran after the program: {o:?}");
    ensure!(!o.iter().any(|x| x == "poststop"), "poststop ran before delete: {o:?}");
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id)?.must()?;
    let o = order_of(&d);
    ensure!(o.last().map(|s| s.as_str()) == Some("poststop"), "poststop did not run last at delete: {o:?}");
    ensure!(o.len() == 7, "each hook must run exactly once: {o:?}");
    Ok(())
}

fn state_stdin(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = trace_dir(&mut b)?;
    add_all_tracers(&mut b, &d);
    b.args(&["/bin/true"]);
    let (_e, _, _) = ctx.run_detached(&b, &crate::ctx::Opts::default())?;
    let bundle = std::fs::canonicalize(&b.dir)?;
    for k in KINDS {
        let p = d.join(format!("{k}.json"));
        let s = std::fs::read_to_string(&p).with_context(|| format!("{k} did not run (no {})", p.display()))?;
        let v: Value = serde_json::from_str(&s).with_context(|| format!("{k} stdin is not JSON: {s:?}"))?;
        ensure!(v["ociVersion"].is_string(), "{k}: no ociVersion in {s}");
        ensure!(v["id"].as_str().map(|x| x.starts_with(&ctx.cg_prefix)).unwrap_or(false), "{k}: bad id in {s}");
        let vb = v["bundle"].as_str().unwrap_or("");
        ensure!(std::fs::canonicalize(vb).ok().as_deref() == Some(bundle.as_path()), "{k}: bundle {vb:?} is not {}", bundle.display());
        let st = v["status"].as_str().unwrap_or("");
        ensure!(["creating", "created", "running", "stopped"].contains(&st), "{k}: status {st:?} is not a spec status");
        // pid is REQUIRED when status is created or running; prestart and
        // createRuntime hooks exist to customize the new namespaces, which
        // they can only reach through the pid.
        if st == "created" || st == "running" || k == "prestart" || k == "createRuntime" {
            ensure!(v["pid"].as_i64().map(|p| p > 0).unwrap_or(false), "{k}: status {st:?} without a valid pid in {s}");
        }
    }
    Ok(())
}

fn args_env(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = b.host_dir("hk")?;
    let script = format!("printf '%s|%s|%s|%s' \"$0\" \"$1\" \"$RTT_HOOK\" \"${{RTT_LEAK-unset}}\" > {}/args", d.display());
    b.push(
        "/hooks/createRuntime",
        json!({"path": "/bin/sh", "args": ["sh", "-c", script, "zero", "one"], "env": ["RTT_HOOK=hook value", "PATH=/bin:/usr/bin"]}),
    );
    b.args(&["/bin/true"]);
    let opts = crate::ctx::Opts { env: vec![("RTT_LEAK".into(), "leaked".into())], ..Default::default() };
    ctx.run_detached(&b, &opts)?;
    let got = std::fs::read_to_string(d.join("args")).context("the createRuntime hook did not run")?;
    ensure!(got == "zero|one|hook value|unset", "hook saw {got:?}, want \"zero|one|hook value|unset\"");
    Ok(())
}

/// A hook of `kind` fails; the operation that runs it must fail and the
/// program must never run.
fn fail_early(ctx: &mut Ctx, kind: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = trace_dir(&mut b)?;
    b.push(&format!("/hooks/{kind}"), hook("cat >/dev/null; echo rtt-hook-failing >&2; exit 3"));
    b.push(&format!("/hooks/{kind}"), tracer(&d, &format!("{kind}-after")));
    b.sh(&format!("echo ran > {}/program; sleep 1000", d.display()));
    let err = expect_refused(ctx, &b, &format!("a failing {kind} hook"))?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(!d.join("program").exists(), "the program ran although a {kind} hook failed");
    let o = order_of(&d);
    ensure!(!o.contains(&format!("{kind}-after")), "hooks after the failing {kind} hook still ran: {o:?}");
    let _ = err;
    Ok(())
}

fn poststart_fail(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = trace_dir(&mut b)?;
    b.push("/hooks/poststart", hook("cat >/dev/null; exit 3"));
    b.push("/hooks/poststart", tracer(&d, "poststart-after"));
    b.sh(&format!("echo ran > {}/program; sleep 1000", d.display()));
    let c = ctx.create(&b)?;
    let s = ctx.rt(&["start", &c.id])?;
    ensure!(s.ok(), "start failed on a failing poststart hook (the spec says warn and continue): {}", s.describe());
    ensure!(ctx.status(&c.id)? == "running", "container not running after a failing poststart hook");
    let o = order_of(&d);
    ensure!(o.contains(&"poststart-after".to_string()), "the poststart hook after the failing one did not run: {o:?}");
    Ok(())
}

fn poststop_fail(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = trace_dir(&mut b)?;
    b.push("/hooks/poststop", hook("cat >/dev/null; exit 3"));
    b.push("/hooks/poststop", tracer(&d, "poststop-after"));
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    let del = ctx.delete(&c.id)?;
    ensure!(del.ok(), "delete failed on a failing poststop hook (the spec says warn and continue): {}", del.describe());
    ensure!(!ctx.rt(&["state", &c.id])?.ok(), "container still exists after delete");
    let o = order_of(&d);
    ensure!(o.contains(&"poststop-after".to_string()), "the poststop hook after the failing one did not run: {o:?}");
    Ok(())
}

fn timeout(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let mut h = hook("exec sleep 20");
    h["timeout"] = json!(1);
    b.push("/hooks/createRuntime", h);
    b.args(&["/bin/true"]);
    let t = std::time::Instant::now();
    expect_refused(ctx, &b, "a createRuntime hook over its 1 s timeout")?;
    let el = t.elapsed();
    if el > Duration::from_secs(10) {
        bail!("the timed-out hook held the operation for {el:?}");
    }
    Ok(())
}
