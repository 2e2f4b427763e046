//! Lifecycle: create/start/state/kill/delete, their transitions and errors
//! (runtime.md "Lifecycle" and "Operations"), and the engine contract around
//! them (pid file, re-parenting, error words).

use super::*;
use crate::ctx::Opts;
use crate::suite::{case, Case};
use crate::sys::{self, Exit};
use anyhow::{ensure, Context};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

pub fn cases() -> Vec<Case> {
    vec![
        case("lifecycle.create.state_created", "after create: status created, pid = pid file, process exists", create_state_created),
        case("lifecycle.create.process_not_started", "the user program does not run before start", process_not_started),
        case("lifecycle.create.pid_file", "--pid-file holds the bare decimal pid, re-parented to the caller (a subreaper)", pid_file),
        case("lifecycle.create.duplicate_id", "create with an existing id fails and leaves the first container alone", duplicate_id),
        case("lifecycle.create.config_edit_no_effect", "editing config.json after create changes nothing", config_edit_no_effect),
        case("lifecycle.create.failure_leaves_nothing", "a failed create (missing rootfs) leaves no container, state dir or cgroup", failure_leaves_nothing),
        case("lifecycle.create.invalid_json", "create with a config.json that is not JSON fails", invalid_json),
        case("lifecycle.start.running", "start: status running, same pid, program runs", start_running),
        case("lifecycle.start.twice", "start on a running container fails", start_twice),
        case("lifecycle.start.stopped", "start on a stopped container fails", start_stopped),
        case("lifecycle.state.fields", "state JSON: ociVersion, id, status, pid, absolute bundle, annotations", state_fields),
        case("lifecycle.state.stopped", "after the process exits, status is stopped", state_stopped),
        case("lifecycle.kill.running", "kill TERM on a running container: the process gets it; state stopped", kill_running),
        case("lifecycle.kill.created", "kill on a created container is allowed and stops it", kill_created),
        case("lifecycle.kill.stopped_fails", "kill on a stopped container fails", kill_stopped_fails),
        case("lifecycle.delete.stopped", "delete of a stopped container succeeds; the id is free again", delete_stopped),
        case("lifecycle.delete.running_fails", "delete without --force on a running container fails and has no effect", delete_running_fails),
        case("lifecycle.delete.created_fails", "delete without --force on a created (not stopped) container fails and has no effect", delete_created_fails),
        case("lifecycle.delete.force", "delete --force kills a running container and removes it", delete_force),
        case("lifecycle.delete.only_created", "delete removes only what create made (bundle, rootfs, bind sources untouched)", delete_only_created),
        case("lifecycle.unknown_id.fails", "state/start/kill/delete of an unknown id fail", unknown_id_fails),
        case("lifecycle.unknown_id.error_words", "errors for an unknown id say \"does not exist\" (engines match it)", unknown_id_words),
        case("lifecycle.run.exit_code", "run in the foreground returns the container's exit code", run_exit_code),
        case("lifecycle.run.signal_status", "run returns 128+N when the program dies of signal N (137 for KILL)", run_signal_status),
        case("lifecycle.create.bad_id", "an id with a path separator (../x) is refused and writes nothing outside --root", bad_id),
        case("lifecycle.create.go_runc_flags", "create accepts go-runc's --no-pivot and --no-new-keyring", go_runc_flags),
    ]
}

fn create_state_created(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    let s = ctx.state(&c.id)?;
    ensure!(s["status"] == "created", "status after create is {}, want created", s["status"]);
    ensure!(s["pid"].as_i64() == Some(c.state_pid as i64), "state pid {} changed from {}", s["pid"], c.state_pid);
    ensure!(sys::alive(c.state_pid), "pid {} from the state is not a live process", c.state_pid);
    ensure!(sys::alive(c.pid), "pid {} from the pid file is not a live process", c.pid);
    Ok(())
}

fn process_not_started(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let out = b.host_dir("out")?;
    b.mount(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}));
    b.sh("echo ran > /out/marker; sleep 1000");
    let c = ctx.create(&b)?;
    std::thread::sleep(Duration::from_millis(400));
    ensure!(!out.join("marker").exists(), "the program ran before start");
    ctx.start(&c.id)?;
    let t = std::time::Instant::now();
    while !out.join("marker").exists() {
        ensure!(t.elapsed() < Duration::from_secs(5), "the program did not run after start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn pid_file(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    let raw = std::fs::read_to_string(&c.pid_file)?;
    ensure!(
        !raw.is_empty() && raw.trim_end_matches('\n').chars().all(|ch| ch.is_ascii_digit()),
        "pid file content {raw:?} is not a bare decimal"
    );
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.pid))?;
    let ppid: i32 = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|x| x.parse().ok()).unwrap_or(-1);
    ensure!(
        ppid == std::process::id() as i32,
        "container process {} has parent {ppid}, not the caller {} (its parents must all have exited so the engine can reap it)",
        c.pid,
        std::process::id()
    );
    ctx.start(&c.id)?;
    ctx.kill(&c.id, "KILL")?.must()?;
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Signal(9), "reaped {e}, want killed by signal 9");
    Ok(())
}

fn duplicate_id(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    let b2 = sleeper(ctx)?;
    b2.write()?;
    let o = ctx.rt(&["create", "--bundle", &b2.dir.to_string_lossy(), &c.id])?;
    o.must_fail("create with a duplicate id")?;
    let s = ctx.state(&c.id)?;
    ensure!(s["status"] == "created" && s["pid"].as_i64() == Some(c.state_pid as i64), "the first container changed: {s}");
    ensure!(s["bundle"].as_str().map(|p| Path::new(p) == b.dir).unwrap_or(false), "bundle changed: {}", s["bundle"]);
    Ok(())
}

fn config_edit_no_effect(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/echo", "original"]);
    let c = ctx.create(&b)?;
    b.args(&["/bin/echo", "edited"]);
    b.write()?;
    ctx.start(&c.id)?;
    let e = ctx.wait(c.pid)?;
    let out = c.stdout();
    ensure!(e == Exit::Code(0), "process {e}");
    ensure!(out.trim() == "original", "output {out:?}, want \"original\" (config edits after create must not apply)");
    Ok(())
}

fn root_listing(ctx: &Ctx) -> BTreeSet<String> {
    walk(&ctx.rt.root)
}

fn walk(d: &Path) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            s.insert(e.path().to_string_lossy().into_owned());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                s.extend(walk(&e.path()));
            }
        }
    }
    s
}

fn failure_leaves_nothing(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/root/path", json!("no-such-rootfs"));
    let before = root_listing(ctx);
    let cg = b.config["linux"]["cgroupsPath"].as_str().unwrap_or("").to_string();
    let (c, ok) = ctx.try_create(&b, &Opts::default())?;
    ensure!(!ok, "create with a missing rootfs succeeded");
    ensure!(!c.out.stderr.trim().is_empty(), "create failed without an error message");
    let st = ctx.rt(&["state", &c.id])?;
    ensure!(!st.ok(), "state finds the failed container: {}", st.stdout.trim());
    let after = root_listing(ctx);
    let extra: Vec<&String> = after.difference(&before).collect();
    ensure!(extra.is_empty(), "the failed create left state behind: {extra:?}");
    for (ctrl, mnt) in &ctx.host.cgroup_v1 {
        let p = mnt.join(cg.trim_start_matches('/'));
        ensure!(!p.exists(), "the failed create left cgroup {} ({ctrl})", p.display());
    }
    Ok(())
}

fn invalid_json(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    b.write()?;
    std::fs::write(b.config_path(), "{ this is not json")?;
    let id = ctx.new_id();
    let o = ctx.rt(&["create", "--bundle", &b.dir.to_string_lossy(), &id])?;
    o.must_fail("create with invalid config.json")?;
    ensure!(!ctx.rt(&["state", &id])?.ok(), "state finds a container from an invalid config");
    Ok(())
}

fn start_running(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    let s = ctx.state(&c.id)?;
    ensure!(s["status"] == "running", "status after start is {}, want running", s["status"]);
    ensure!(s["pid"].as_i64() == Some(c.state_pid as i64), "pid changed from {} to {}", c.state_pid, s["pid"]);
    let comm = sys::read_trim(format!("/proc/{}/comm", c.state_pid))?;
    ensure!(comm == "sleep", "process {} runs {comm:?}, want sleep", c.state_pid);
    Ok(())
}

fn start_twice(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["start", &c.id])?.must_fail("second start")?;
    ensure!(ctx.status(&c.id)? == "running", "container no longer running after the failed start");
    Ok(())
}

fn start_stopped(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.rt(&["start", &c.id])?.must_fail("start of a stopped container")?;
    Ok(())
}

fn state_fields(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/annotations", json!({"org.example.rtt": "yes", "k2": "v2"}));
    let c = ctx.create(&b)?;
    let s = ctx.state(&c.id)?;
    ensure!(s["ociVersion"].as_str().map(|v| !v.is_empty()).unwrap_or(false), "no ociVersion string: {s}");
    ensure!(s["id"] == c.id.as_str(), "id {} != {}", s["id"], c.id);
    ensure!(s["status"] == "created", "status {}", s["status"]);
    ensure!(s["pid"].as_i64() == Some(c.state_pid as i64), "pid {} != {}", s["pid"], c.state_pid);
    let bundle = s["bundle"].as_str().context("no bundle string")?;
    ensure!(Path::new(bundle).is_absolute(), "bundle {bundle} is not absolute");
    ensure!(
        std::fs::canonicalize(bundle).ok() == std::fs::canonicalize(&b.dir).ok(),
        "bundle {bundle} is not {}",
        b.dir.display()
    );
    ensure!(
        s["annotations"] == json!({"org.example.rtt": "yes", "k2": "v2"}),
        "annotations {} differ from config.json's",
        s["annotations"]
    );
    ctx.start(&c.id)?;
    let s = ctx.state(&c.id)?;
    ensure!(s["status"] == "running" && s["pid"].as_i64() == Some(c.state_pid as i64), "after start: {s}");
    Ok(())
}

fn state_stopped(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.sh("exit 0");
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    let s = ctx.state(&c.id)?;
    ensure!(s["id"] == c.id.as_str(), "state of a stopped container lacks its id: {s}");
    Ok(())
}

fn kill_running(ctx: &mut Ctx) -> Result<()> {
    let b = trapper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.kill(&c.id, "TERM")?.must()?;
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Code(3), "after kill TERM the process {e}, want exit 3 from its TERM trap");
    ctx.wait_status(&c.id, "stopped")?;
    Ok(())
}

fn kill_created(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    ctx.kill(&c.id, "KILL")?.must()?;
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Signal(9), "process {e}, want killed by 9");
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id)?.must()?;
    Ok(())
}

fn kill_stopped_fails(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.kill(&c.id, "TERM")?.must_fail("kill of a stopped container")?;
    Ok(())
}

fn delete_stopped(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id)?.must()?;
    ensure!(!ctx.rt(&["state", &c.id])?.ok(), "state still finds the deleted container");
    // the id can be used again
    let o = ctx.rt(&["create", "--bundle", &b.dir.to_string_lossy(), &c.id])?;
    ensure!(o.ok(), "re-create with the deleted id failed: {}", o.describe());
    ctx.rt(&["delete", "--force", &c.id])?.must()?;
    Ok(())
}

fn delete_running_fails(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.delete(&c.id)?.must_fail("delete of a running container without --force")?;
    ensure!(sys::alive(c.state_pid), "the failed delete killed the process");
    ensure!(ctx.status(&c.id)? == "running", "the failed delete changed the state");
    Ok(())
}

fn delete_created_fails(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    ctx.delete(&c.id)?.must_fail("delete of a created (not stopped) container without --force")?;
    ensure!(sys::alive(c.state_pid), "the failed delete killed the process");
    ensure!(ctx.status(&c.id)? == "created", "the failed delete changed the state");
    Ok(())
}

fn delete_force(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["delete", "--force", &c.id])?.must()?;
    ensure!(sys::wait_dead(c.pid, Duration::from_secs(5)), "process {} survived delete --force", c.pid);
    ensure!(!ctx.rt(&["state", &c.id])?.ok(), "state still finds the container");
    Ok(())
}

fn delete_only_created(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let src = b.host_dir("bindsrc")?;
    std::fs::write(src.join("keep"), "keep")?;
    std::fs::write(b.dir.join("extra-file"), "mine")?;
    b.mount(json!({"destination": "/mnt/bind", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
    b.args(&["/bin/true"]);
    b.write()?;
    let root_before = root_listing(ctx);
    let c = ctx.create(&b)?;
    // files the harness made for this create
    let ours: BTreeSet<String> = [&c.stdout, &c.stderr, &c.pid_file].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let bundle_before: BTreeSet<String> = walk(&b.dir).difference(&ours).cloned().collect();
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id)?.must()?;
    let bundle_after: BTreeSet<String> = walk(&b.dir).difference(&ours).cloned().collect();
    let gone: Vec<&String> = bundle_before.difference(&bundle_after).collect();
    let added: Vec<&String> = bundle_after.difference(&bundle_before).collect();
    ensure!(gone.is_empty(), "delete removed bundle files: {gone:?}");
    ensure!(added.is_empty(), "the runtime left files in the bundle: {added:?}");
    ensure!(std::fs::read_to_string(src.join("keep"))? == "keep", "bind source changed");
    ensure!(std::fs::read_to_string(b.dir.join("extra-file"))? == "mine", "bundle file changed");
    let root_after = root_listing(ctx);
    let left: Vec<&String> = root_after.difference(&root_before).collect();
    ensure!(left.is_empty(), "the runtime's --root still holds {left:?} after delete");
    Ok(())
}

fn unknown_id_fails(ctx: &mut Ctx) -> Result<()> {
    let id = "rtt-no-such-container";
    for args in [vec!["state", id], vec!["start", id], vec!["kill", id, "TERM"], vec!["delete", id]] {
        ctx.rt(&args)?.must_fail(&format!("`{}` of an unknown id", args.join(" ")))?;
    }
    Ok(())
}

fn unknown_id_words(ctx: &mut Ctx) -> Result<()> {
    let id = "rtt-no-such-container";
    for args in [vec!["state", id], vec!["kill", id, "KILL"], vec!["delete", id]] {
        let o = ctx.rt(&args)?.must_fail(&format!("`{}` of an unknown id", args.join(" ")))?;
        ensure!(
            o.stderr.contains("does not exist") || o.stderr.contains("not exist"),
            "`{}`: stderr {:?} lacks \"does not exist\"",
            args.join(" "),
            excerpt(&o.stderr)
        );
    }
    Ok(())
}

fn run_exit_code(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.sh("echo from-run; exit 7");
    let (id, o) = ctx.run_fg(&b, &Opts::default())?;
    ensure!(!o.timed_out, "run timed out");
    ensure!(o.code == Some(7), "run returned {:?}, want 7 ({})", o.code, o.describe());
    ensure!(o.stdout.trim() == "from-run", "run stdout {:?}", o.stdout);
    let st = ctx.rt(&["state", &id])?;
    ensure!(!st.ok(), "run did not remove the container after it exited");
    Ok(())
}

fn run_signal_status(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    // without a pid namespace the shell is not an init and can SIGKILL itself
    b.drop_ns("pid");
    b.sh("echo before; kill -KILL $$; echo after");
    let (_, o) = ctx.run_fg(&b, &Opts::default())?;
    ensure!(!o.timed_out, "run timed out");
    ensure!(o.code == Some(137), "run returned {:?}, want 137 for a program killed by SIGKILL ({})", o.code, o.describe());
    ensure!(o.stdout.trim() == "before", "stdout {:?}", o.stdout);
    Ok(())
}

fn go_runc_flags(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    b.write()?;
    let id = ctx.new_id();
    let pf = b.dir.join("flags.pid");
    let o = ctx.rt(&[
        "create", "--bundle", &b.dir.to_string_lossy(), "--pid-file", &pf.to_string_lossy(), "--no-pivot", "--no-new-keyring", &id,
    ])?;
    ensure!(o.ok(), "create --no-pivot --no-new-keyring: {}", o.describe());
    ensure!(ctx.status(&id)? == "created", "not created");
    ctx.start(&id)?;
    ensure!(ctx.status(&id)? == "running", "not running");
    Ok(())
}

fn bad_id(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    b.write()?;
    let parent = ctx.rt.root.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let before = walk(&parent);
    let bad = format!("../{}-escape", ctx.cg_prefix);
    let o = ctx.rt(&["create", "--bundle", &b.dir.to_string_lossy(), &bad])?;
    let created = o.ok();
    if created {
        let _ = ctx.rt(&["delete", "--force", &bad]);
    }
    let after = walk(&parent);
    let outside: Vec<&String> = after
        .difference(&before)
        .filter(|p| !Path::new(p.as_str()).starts_with(&ctx.rt.root) && !Path::new(p.as_str()).starts_with(&ctx.dir))
        .collect();
    ensure!(outside.is_empty(), "create with id {bad:?} wrote outside --root: {outside:?}");
    ensure!(!created, "create accepted the id {bad:?}");
    Ok(())
}
