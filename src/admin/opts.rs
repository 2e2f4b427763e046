//! `create --name ...`: the administrator's flags (clap), flattened into
//! `create`. Each one requires `--name`, so the runc form is unchanged.

#[derive(clap::Args, Debug, Default, Clone)]
pub struct AdminArgs {
    /// Administrator form: container name (the same thing as ID)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Image reference in the image store, or a bundle directory (default: --bundle)
    #[arg(long, value_name = "REF|BUNDLE_DIR", requires = "name")]
    pub image: Option<String>,
    /// Start the container after creating it (its output goes to `nexcage logs`)
    #[arg(long, requires = "name")]
    pub start: bool,
    /// Start the container at boot (`nexcage autostart`)
    #[arg(long, requires = "name")]
    pub auto_start: bool,
    /// Memory limit in MiB
    #[arg(long, value_name = "MB", requires = "name")]
    pub memory: Option<u64>,
    /// Swap in MiB on top of --memory
    #[arg(long, value_name = "MB", requires = "memory")]
    pub memory_swap: Option<u64>,
    /// Number of CPUs (cpuset 0..N-1)
    #[arg(long, value_name = "N", requires = "name", value_parser = clap::value_parser!(u32).range(1..))]
    pub cores: Option<u32>,
    /// Relative CPU weight (cgroup v1 shares)
    #[arg(long, value_name = "N", requires = "name")]
    pub cpu_shares: Option<u64>,
    /// CPU time per 100000us period, in microseconds
    #[arg(long, value_name = "US", requires = "name", value_parser = clap::value_parser!(i64).range(1000..))]
    pub cpu_quota: Option<i64>,
    /// Root disk size (e.g. 10G), honoured by the proxmox backend
    #[arg(long, value_name = "SIZE", requires = "name")]
    pub storage_size: Option<String>,
    /// Root disk storage for the proxmox backend
    #[arg(long, value_name = "TYPE", requires = "name", value_parser = ["zfs", "dir"])]
    pub storage_type: Option<String>,
    /// none, host, bridge=BRIDGE[,ip=CIDR][,gw=IP][,hwaddr=MAC][,mtu=N][,tag=VLAN][,name=IFNAME][,firewall=1], or custom=NAME (network.custom.NAME of the config)
    #[arg(long, value_name = "MODE", requires = "name")]
    pub network: Option<String>,
    /// Publish HOST port (on IP, default all) as CONTAINER port with nftables DNAT; needs a bridged container with an address (repeatable)
    #[arg(long, value_name = "[IP:]HOST:CONTAINER[/tcp|/udp]", requires = "name")]
    pub port: Vec<String>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", requires = "name")]
    pub env: Vec<String>,
    /// Bind mount SRC:DST[:ro] (repeatable)
    #[arg(long, value_name = "SRC:DST[:ro]", requires = "name")]
    pub mount: Vec<String>,
    /// Backend for this container
    #[arg(long, value_name = "BACKEND", requires = "name", value_parser = ["native", "proxmox"])]
    pub backend: Option<String>,
}
