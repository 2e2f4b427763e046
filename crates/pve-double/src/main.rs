//! pve-double: a strict test double of the Proxmox VE control plane.
//! `pve-double serve ...` runs the HTTPS API; invoked as `pct`, `pvesh`,
//! `pveversion` or `vzdump` (symlinks) it acts as those CLIs on the same
//! state dir (`PVE_DOUBLE_STATE`). See README.md.

mod cli;
mod hotplug;
mod lxc;
mod lxcconf;
mod ops;
mod server;
mod state;
mod tasks;
mod versions;

use nexcage_pve::schema::Schema;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: pve-double serve --state DIR --listen ADDR:PORT --schema FILE [--node NAME] \
[--token USER@REALM!ID=SECRET ...] [--user USER@REALM:PASSWORD ...] [--lxc-path DIR] [--real-start] \
[--pve-version VERSION]\n       pve-double pct|pvesh|pveversion|vzdump ARGS... \
(or via symlinks with those names; env PVE_DOUBLE_STATE, PVE_DOUBLE_SCHEMA, PVE_DOUBLE_LXC_PATH)";

fn main() {
    close_inherited_fds();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PVE_DOUBLE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let code = match (prog.as_str(), args.get(1).map(String::as_str)) {
        (p @ ("pct" | "pvesh" | "pveversion" | "pvesm" | "vzdump"), _) => run_cli(p, &args[1..]),
        (_, Some(p @ ("pct" | "pvesh" | "pveversion" | "pvesm" | "vzdump"))) => {
            run_cli(p, &args[2..])
        }
        (_, Some("serve")) => match parse_serve(&args[2..]).and_then(server::serve) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("pve-double: {e}");
                1
            }
        },
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

fn run_cli(personality: &str, args: &[String]) -> i32 {
    // As Perl's `pct` under `| head`: a closed stdout ends the command
    // quietly (SIGPIPE), not with a panic on the failed write.
    // SAFETY: restores the default disposition of one signal; no handler
    // code is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let Some(dir) = std::env::var_os("PVE_DOUBLE_STATE") else {
        eprintln!("pve-double: PVE_DOUBLE_STATE is not set");
        return 255;
    };
    let dir = PathBuf::from(dir);
    let schema_path = std::env::var_os("PVE_DOUBLE_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("schema.json"));
    let schema = match Schema::load(&schema_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pve-double: {e} (set PVE_DOUBLE_SCHEMA)");
            return 255;
        }
    };
    let state = match state::State::open(&dir, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pve-double: state dir {}: {e}", dir.display());
            return 255;
        }
    };
    match personality {
        "pct" => cli::pct(&state, &schema, args),
        "pveversion" => cli::pveversion(&state, args),
        "pvesm" => cli::pvesm(&state, args),
        "vzdump" => cli::vzdump(&state, &schema, args),
        _ => cli::pvesh(&state, &schema, args),
    }
}

fn parse_serve(args: &[String]) -> Result<server::ServeOpts, String> {
    let mut o = server::ServeOpts {
        state: PathBuf::new(),
        listen: "127.0.0.1:0".into(),
        schema: PathBuf::new(),
        node: "pve".into(),
        tokens: Vec::new(),
        users: Vec::new(),
        lxc_path: None,
        real_start: false,
        pve_version: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--state" => o.state = PathBuf::from(val()?),
            "--listen" => o.listen = val()?,
            "--schema" => o.schema = PathBuf::from(val()?),
            "--node" => o.node = val()?,
            "--token" => {
                let v = val()?;
                let (id, secret) = v
                    .split_once('=')
                    .ok_or("--token wants USER@REALM!ID=SECRET")?;
                o.tokens.push((id.to_string(), secret.to_string()));
            }
            "--user" => {
                let v = val()?;
                let (u, p) = v
                    .split_once(':')
                    .ok_or("--user wants USER@REALM:PASSWORD")?;
                o.users.push((u.to_string(), p.to_string()));
            }
            "--lxc-path" => o.lxc_path = Some(PathBuf::from(val()?)),
            "--real-start" => o.real_start = true,
            "--pve-version" => o.pve_version = Some(val()?),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if o.state.as_os_str().is_empty() || o.schema.as_os_str().is_empty() {
        return Err(format!("--state and --schema are required\n{USAGE}"));
    }
    Ok(o)
}

/// Closes every fd above 2 the caller left open (a shell's `flock 9` lock,
/// a pipe): the server lives on after its caller, and a CLI personality may
/// start LXC processes that do too; neither may hold them.
fn close_inherited_fds() {
    // SAFETY: close_range(2) on fds 3.. at the very start of main, before
    // anything in this process opened or owns an fd above 2.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: each fd /proc/self/fd lists (its own dir fd
    // included, which is closed by then: EBADF, ignored).
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: as above; nothing in this process owns these fds.
        unsafe { libc::close(fd) };
    }
}
