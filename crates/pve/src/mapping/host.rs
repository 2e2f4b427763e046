//! Host facts the caller feeds into [`super::MapOptions`] (kept out of the
//! pure mapping function).

/// (MemTotal, SwapTotal) in MiB from `/proc/meminfo`: nexcage's value for
/// "no memory limit" / "no swap limit" instead of Proxmox's 512 MiB default.
pub fn host_memory_mib() -> std::io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    Ok(parse_meminfo(&text))
}

pub fn parse_meminfo(text: &str) -> (u64, u64) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (get("MemTotal:"), get("SwapTotal:"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_meminfo() {
        let t = "MemTotal:       24571364 kB\nMemFree: 1 kB\nSwapTotal:       1048572 kB\n";
        assert_eq!(super::parse_meminfo(t), (23995, 1023));
    }
}
