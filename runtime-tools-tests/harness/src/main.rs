//! rtt-harness command line; see README.md.

use anyhow::{bail, Context, Result};
use rtt_harness::report::{self, Expected};
use rtt_harness::suite::{self, SuiteOptions};
use std::path::PathBuf;

const USAGE: &str = "usage: rtt-harness --runtime [NAME=]PATH [--runtime ...] [--case NAME|PREFIX. ...]
       [--format table|markdown|json] [--expected FILE] [--write-expected FILE]
       [--checker PATH] [--keep] [-v] | --list";

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rtt-harness: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<i32> {
    let mut runtimes = Vec::new();
    let mut cases = Vec::new();
    let mut format = "table".to_string();
    let mut expected: Option<PathBuf> = None;
    let mut write_expected: Option<PathBuf> = None;
    let mut checker: Option<PathBuf> = None;
    let (mut keep, mut verbose, mut list) = (false, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |what: &str| args.next().with_context(|| format!("{what} needs a value"));
        match a.as_str() {
            "--runtime" | "-r" => runtimes.push(suite::parse_runtime(&val("--runtime")?)?),
            "--case" | "-c" => cases.push(val("--case")?),
            "--format" => format = val("--format")?,
            "--expected" => expected = Some(PathBuf::from(val("--expected")?)),
            "--write-expected" => write_expected = Some(PathBuf::from(val("--write-expected")?)),
            "--checker" => checker = Some(PathBuf::from(val("--checker")?)),
            "--keep" => keep = true,
            "-v" | "--verbose" => verbose = true,
            "--list" => list = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    if list {
        for c in suite::selected(&cases) {
            println!("{:<48} {}", c.name, c.desc);
        }
        return Ok(0);
    }
    if runtimes.is_empty() {
        bail!("no --runtime given\n{USAGE}");
    }
    let checker = match checker.or_else(suite::default_checker) {
        Some(c) => c,
        None => bail!("cannot find the static rtt-checker; build it (run.sh does) or pass --checker / RTT_CHECKER"),
    };
    let opts = SuiteOptions { runtimes, cases, checker, keep, verbose };
    let results = suite::run_suite(&opts)?;
    match format.as_str() {
        "markdown" | "md" => print!("{}", report::markdown(&results)),
        "json" => println!("{}", serde_json::to_string_pretty(&report::json(&results))?),
        _ => print!("{}", report::table(&results)),
    }
    if let Some(p) = write_expected {
        report::write_expected(&p, &results)?;
        eprintln!("wrote {}", p.display());
    }
    let mut code = 0;
    if let Some(p) = expected {
        let exp = Expected::load(&p)?;
        let (reg, imp, skip) = exp.compare(&results);
        for l in &imp {
            eprintln!("improved: {l}");
        }
        for l in &skip {
            eprintln!("skipped (expected pass): {l}");
        }
        if reg.is_empty() {
            eprintln!("no regressions against {}", p.display());
        } else {
            eprintln!("{} regression(s) against {}:", reg.len(), p.display());
            for l in &reg {
                eprintln!("REGRESSION: {l}");
            }
            code = 1;
        }
    }
    Ok(code)
}
