//! rtt-harness: our OCI runtime conformance suite.
//!
//! For every case and runtime it generates a bundle (busybox-static rootfs plus
//! the static `rtt-checker`), writes `config.json`, drives the runtime through
//! its runc-style command line the way an engine does (create with
//! `--pid-file` and stdio redirected to files, start, state, kill, delete,
//! run, exec...), and checks the result from the outside (pid file, state
//! JSON, exit status reaped as a child subreaper, cgroup files, namespaces)
//! and from the inside (the checker's TAP output).

pub mod bundle;
pub mod cases;
pub mod console;
pub mod ctx;
pub mod host;
pub mod report;
pub mod suite;
pub mod sys;

pub use suite::{run_suite, Outcome, SuiteOptions};
