//! exec: a new process in the running container (libcontainer's tenant).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use super::{describe, lc_root};
use crate::backend::ExecOpts;
use crate::state::Record;

/// Returns the new process's pid.
pub fn exec(rec: &Record, dir: &Path, o: &ExecOpts) -> Result<i32> {
    let mut b = ContainerBuilder::new(rec.id.clone(), SyscallType::default())
        .with_root_path(lc_root(dir))
        .map_err(describe)?
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds);
    if let Some(p) = &o.pid_file {
        b = b.with_pid_file(Some(p)).map_err(describe)?;
    }
    let env: HashMap<String, String> = o
        .env
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let mut t = b
        .as_tenant()
        .with_detach(o.detach)
        .with_process(o.process_file.as_ref())
        .with_no_new_privs(o.no_new_privs)
        .with_capabilities(o.caps.clone())
        .with_additional_gids(o.additional_gids.clone())
        .with_user(o.uid)
        .with_group(o.gid)
        .with_env(env)
        .with_cwd(o.cwd.as_ref());
    if o.process_file.is_none() {
        t = t.with_container_args(o.args.clone());
    }
    let pid = t.build().map_err(describe)?;
    Ok(pid.as_raw())
}
