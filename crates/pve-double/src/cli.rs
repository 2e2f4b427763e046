//! `pct` and `pvesh` front ends (invoked through symlinks). They run as
//! `root@pam`, like the real ones, and print what §3 of PROXMOX-FACTS says.

use crate::ops::{self, ApiError, Ctx};
use crate::state::State;
use crate::tasks;
use nexcage_pve::conffile::encode_text;
use nexcage_pve::schema::{Params, Schema};
use serde_json::Value;

/// Split `--key value` options from positional args. A flag with no value
/// (`--purge` followed by another option or the end) means `1`.
fn split_args(args: &[String]) -> (Vec<String>, Params) {
    let mut pos = Vec::new();
    let mut opts = Params::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(k) = args[i].strip_prefix("--") {
            match args.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    opts.insert(k.to_string(), v.clone());
                    i += 2;
                }
                _ => {
                    opts.insert(k.to_string(), "1".into());
                    i += 1;
                }
            }
        } else {
            pos.push(args[i].clone());
            i += 1;
        }
    }
    (pos, opts)
}

fn usage(cmd: &str) -> &'static str {
    match cmd {
        "create" => "pct create <vmid> <ostemplate> [OPTIONS]",
        "set" => "pct set <vmid> [OPTIONS]",
        "destroy" => "pct destroy <vmid> [OPTIONS]",
        "start" => "pct start <vmid> [OPTIONS]",
        "stop" => "pct stop <vmid> [OPTIONS]",
        "shutdown" => "pct shutdown <vmid> [OPTIONS]",
        "unlock" => "pct unlock <vmid>",
        "status" => "pct status <vmid> [OPTIONS]",
        "config" => "pct config <vmid> [OPTIONS]",
        _ => "pct list",
    }
}

/// Print an error the way pve's CLI handler does; exit code 255.
fn report(e: ApiError, usage_line: &str) -> i32 {
    if e.status == 400 && !e.errors.is_empty() {
        eprintln!("400 {}", e.message);
        for (k, v) in &e.errors {
            eprintln!("{k}: {v}");
        }
        eprintln!("{usage_line}");
    } else {
        eprintln!("{}", e.message);
    }
    255
}

/// Foreground "worker": print the task log; non-OK exit status -> 255.
fn finish_task(state: &State, upid: &Value) -> i32 {
    let Some((_, lines)) = upid.as_str().and_then(|u| tasks::read(state, u)) else {
        return 0;
    };
    for l in lines.iter().filter(|l| !l.starts_with("TASK ")) {
        println!("{l}");
    }
    let st = tasks::exitstatus(&lines);
    if st == "OK" || st.starts_with("WARNINGS") {
        0
    } else {
        eprintln!("{st}");
        255
    }
}

fn vmid_arg(pos: &[String], idx: usize) -> String {
    pos.get(idx).cloned().unwrap_or_default()
}

pub fn pct(state: &State, schema: &Schema, args: &[String]) -> i32 {
    let ctx = Ctx {
        state,
        schema,
        user: "root@pam".into(),
    };
    let Some(cmd) = args.first() else {
        eprintln!("ERROR: no command specified");
        return 255;
    };
    let (pos, mut opts) = split_args(&args[1..]);
    let verbose = cmd == "status" && opts.remove("verbose").is_some();
    let node = state.node.clone();
    let vmid = vmid_arg(&pos, 0);
    let base = format!("/nodes/{node}/lxc");
    let (method, path) = match cmd.as_str() {
        "create" => {
            opts.insert("vmid".into(), vmid.clone());
            opts.insert("ostemplate".into(), vmid_arg(&pos, 1));
            ("POST", base.clone())
        }
        "set" => ("PUT", format!("{base}/{vmid}/config")),
        "destroy" => ("DELETE", format!("{base}/{vmid}")),
        "start" => ("POST", format!("{base}/{vmid}/status/start")),
        "stop" => ("POST", format!("{base}/{vmid}/status/stop")),
        "shutdown" => ("POST", format!("{base}/{vmid}/status/shutdown")),
        "unlock" => {
            // CLI only (pct.pm): no API call can clear a lock.
            let Ok(id) = vmid.parse() else {
                eprintln!("400 Parameter verification failed.\nvmid: value does not look like a valid VM ID\n{}", usage(cmd));
                return 255;
            };
            return match ops::unlock(&ctx, id) {
                Ok(()) => 0,
                Err(e) => report(e, usage(cmd)),
            };
        }
        "status" => ("GET", format!("{base}/{vmid}/status/current")),
        "config" => ("GET", format!("{base}/{vmid}/config")),
        "list" => ("GET", base.clone()),
        other => {
            eprintln!("unknown command 'pct {other}'");
            return 255;
        }
    };
    let data = match ops::dispatch(&ctx, method, &path, opts) {
        Ok(d) => d,
        Err(e) => return report(e, usage(cmd)),
    };
    match cmd.as_str() {
        "create" | "destroy" | "start" | "stop" | "shutdown" => finish_task(state, &data),
        "status" if verbose => {
            // `--verbose`: every defined field but cpu, sorted (PROXMOX-FACTS §3).
            if let Some(o) = data.as_object() {
                for (k, v) in o.iter().filter(|(k, _)| *k != "cpu" && *k != "ha") {
                    println!("{k}: {}", scalar(v));
                }
            }
            0
        }
        "status" => {
            println!(
                "status: {}",
                data.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
            );
            0
        }
        "config" => {
            print_config(&data);
            0
        }
        "list" => {
            print_list(&data);
            0
        }
        _ => 0,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sorted `key: value`, no digest, description encoded, raw lxc last.
fn print_config(data: &Value) {
    let Some(o) = data.as_object() else { return };
    for (k, v) in o {
        match k.as_str() {
            "digest" | "lxc" => {}
            "description" => println!("description: {}", encode_text(&scalar(v))),
            _ => println!("{k}: {}", scalar(v)),
        }
    }
    for pair in o
        .get("lxc")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if let Some([a, b]) = pair.as_array().map(|a| a.as_slice()) {
            println!("{}: {}", scalar(a), scalar(b));
        }
    }
}

fn print_list(data: &Value) {
    let rows = data.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return;
    }
    println!(
        "{:<10} {:<10} {:<12} {:<20}",
        "VMID", "Status", "Lock", "Name"
    );
    for r in rows {
        let s = |k: &str| r.get(k).map(scalar).unwrap_or_default();
        let name: String = s("name").chars().filter(|c| !c.is_whitespace()).collect();
        println!(
            "{:<10} {:<10} {:<12} {:<20}",
            s("vmid"),
            s("status"),
            s("lock"),
            name
        );
    }
}

pub fn pvesh(state: &State, schema: &Schema, args: &[String]) -> i32 {
    let ctx = Ctx {
        state,
        schema,
        user: "root@pam".into(),
    };
    let (pos, mut opts) = split_args(args);
    let format = opts
        .remove("output-format")
        .unwrap_or_else(|| "text".into());
    for k in ["noborder", "noheader", "quiet", "human-readable"] {
        opts.remove(k);
    }
    let (Some(verb), Some(path)) = (pos.first(), pos.get(1)) else {
        eprintln!("USAGE: pvesh <get|set|create|delete> <api_path> [OPTIONS]");
        return 255;
    };
    let method = match verb.as_str() {
        "get" | "ls" => "GET",
        "create" => "POST",
        "set" => "PUT",
        "delete" => "DELETE",
        other => {
            eprintln!("unknown command 'pvesh {other}'");
            return 255;
        }
    };
    let data = match ops::dispatch(&ctx, method, path, opts) {
        Ok(d) => d,
        Err(e) => return report(e, &format!("pvesh {verb} {path}")),
    };
    if data.as_str().is_some_and(|s| s.starts_with("UPID:")) {
        let code = finish_task(state, &data);
        if code != 0 {
            return code;
        }
    }
    match (format.as_str(), &data) {
        ("json", d) => println!("{d}"),
        ("json-pretty", d) => println!("{}", serde_json::to_string_pretty(d).unwrap_or_default()),
        (_, Value::Null) => {}
        (_, Value::String(s)) => println!("{s}"),
        (_, Value::Number(n)) => println!("{n}"),
        (_, d) => println!("{d}"),
    }
    0
}

/// `pveversion [-v|--verbose]`: the versions the double plays (see `versions`).
pub fn pveversion(state: &State, args: &[String]) -> i32 {
    let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
    print!("{}", crate::versions::pveversion(state, verbose));
    0
}

/// `pvesm path <STORAGE:VOLNAME>` (pve-storage PVE/CLI/pvesm.pm `path`):
/// prints the volume's file path (on a node a template is under the dir
/// storage's `template/cache`; here under `DIR/storage/<storage>/`). An
/// unknown storage fails "storage 'X' does not exist" (PROXMOX-FACTS §10,
/// used by nexcage's pct driver to place its empty template). Other
/// subcommands are not modelled.
pub fn pvesm(state: &State, args: &[String]) -> i32 {
    let (Some("path"), Some(volid)) = (args.first().map(String::as_str), args.get(1)) else {
        eprintln!("pve-double: only `pvesm path <volid>` is modelled");
        return 255;
    };
    let Some((storage, volname)) = volid.split_once(':') else {
        eprintln!("unable to parse volume ID '{volid}'");
        return 255;
    };
    if !state.storage_known(storage) {
        eprintln!("storage '{storage}' does not exist");
        return 255;
    }
    println!("{}", state.volume_path(storage, volname).display());
    0
}

/// `vzdump <vmid> [--hold-ms N]`: a backup job as the guest sees it. It
/// takes `lock: backup` (refused with "CT is locked (…)" if the guest is
/// locked), holds it N ms (default 0), then removes it, as a backup job
/// does (PROXMOX-FACTS §10). Nothing is written to any storage.
pub fn vzdump(state: &State, schema: &Schema, args: &[String]) -> i32 {
    let ctx = Ctx {
        state,
        schema,
        user: "root@pam".into(),
    };
    let (pos, opts) = split_args(args);
    let Some(vmid) = pos.first().and_then(|v| v.parse::<u32>().ok()) else {
        eprintln!("usage: vzdump <vmid> [--hold-ms N]");
        return 255;
    };
    let hold = opts
        .get("hold-ms")
        .and_then(|h| h.parse().ok())
        .unwrap_or(0);
    println!("INFO: Starting Backup of VM {vmid} (lxc)");
    if let Err(e) = ops::set_lock(&ctx, vmid, Some("backup"), true) {
        eprintln!("ERROR: Backup of VM {vmid} failed - {}", e.message);
        return 255;
    }
    std::thread::sleep(std::time::Duration::from_millis(hold));
    if let Err(e) = ops::unlock(&ctx, vmid) {
        eprintln!("ERROR: Backup of VM {vmid} failed - {}", e.message);
        return 255;
    }
    println!("INFO: Finished Backup of VM {vmid}");
    0
}
