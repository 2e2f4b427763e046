//! OCI runtime rules both backends follow, written once: hooks and their
//! failure rules, `kill --all` over a cgroup's processes, `HOME` from the
//! container's /etc/passwd. (Stats in
//! runc's shape are `backend::stats`.)

pub mod hooks;
pub mod kill;
pub mod passwd;
