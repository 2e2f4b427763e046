//! OCI runtime rules both backends follow, written once: hooks and their
//! failure rules, and `kill --all` over a cgroup's processes. (Stats in
//! runc's shape are `backend::stats`.)

pub mod hooks;
pub mod kill;
