//! OCI runtime rules both backends follow, written once: hooks and their
//! failure rules, `kill --all` over a cgroup's processes, unknown
//! capability names, AppArmor and SELinux labels the host cannot apply,
//! `HOME`, a missing `process.cwd`, `oomScoreAdj`, a
//! seccomp profile compiled to BPF, the signal state a process starts with,
//! the range of uids/gids and the shape of env entries, and the process
//! `exec` inherits from the container. (Stats in runc's shape are
//! `backend::stats`.)

pub mod caps;
pub mod cwd;
pub mod exec_process;
pub mod home;
pub mod hooks;
pub mod kill;
pub mod lsm;
pub mod oom;
pub mod process_user_env;
pub mod seccomp_bpf;
pub mod signals;
