//! Runs the conformance suite against the runtime in $RTT_RUNTIME and fails
//! on regressions against runtime-tools-tests/expected.json.
//!
//!   RTT_RUNTIME=/abs/path/nexcage [RTT_RUNTIME_NAME=nexcage] [RTT_CASES=lifecycle.,process.]
//!   [RTT_CHECKER=/abs/static/rtt-checker] cargo test -p rtt-harness --test conformance -- --nocapture
//!
//! Needs root and the static checker (built by run.sh, or:
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build -p rtt-checker --release --target x86_64-unknown-linux-gnu).

use rtt_harness::report::{self, Expected};
use rtt_harness::suite::{self, SuiteOptions};
use std::path::PathBuf;

#[test]
fn conformance() {
    let Ok(rt) = std::env::var("RTT_RUNTIME") else {
        println!("skipped: RTT_RUNTIME is not set (set it to the runtime binary to test, e.g. target/debug/nexcage)");
        return;
    };
    let (default_name, path) = match suite::parse_runtime(&rt) {
        Ok(x) => x,
        Err(e) => {
            println!("skipped: RTT_RUNTIME={rt}: {e:#}");
            return;
        }
    };
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: the conformance suite needs root");
        return;
    }
    let name = std::env::var("RTT_RUNTIME_NAME").unwrap_or(default_name);
    let Some(checker) = suite::default_checker() else {
        panic!("static rtt-checker not found: build it (runtime-tools-tests/run.sh does) or set RTT_CHECKER");
    };
    let cases: Vec<String> = std::env::var("RTT_CASES")
        .map(|s| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let opts = SuiteOptions { runtimes: vec![(name.clone(), path)], cases, checker, keep: false, verbose: true };
    let results = suite::run_suite(&opts).expect("suite run");
    println!("{}", report::table(&results));
    let exp_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../expected.json");
    let exp = Expected::load(&exp_path).expect("load expected.json");
    let (reg, imp, skipped) = exp.compare(&results);
    for l in &imp {
        println!("improved: {l}");
    }
    for l in &skipped {
        println!("skipped although expected to pass: {l}");
    }
    assert!(reg.is_empty(), "{} regression(s) for {name}:\n{}", reg.len(), reg.join("\n"));
}
