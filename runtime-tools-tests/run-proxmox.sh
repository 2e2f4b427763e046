#!/bin/sh
# The conformance table for nexcage's Proxmox backend: a test environment
# (zfs-fuse pool, the pve-double as Proxmox's control plane, real LXC) and
# a wrapper that runs nexcage with its config, then the harness on it.
#
#   runtime-tools-tests/run-proxmox.sh [-- HARNESS-ARGS...]   (as root)
#
# scripts/test.sh runs it with `--expected expected.json`: the
# `nexcage-proxmox` column there gates regressions. It takes the Proxmox
# tests' lock (zfs-fuse hangs under concurrent pool churn).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
D=/var/tmp/nxpx-rtt
export NEXCAGE_TEST_POOL=nxrtt
[ "${1:-}" = "--" ] && shift
(cd "$repo" && cargo build -q)
sh "$here/run.sh" --build-only >/dev/null
exec 9>/var/tmp/nexcage-proxmox-tests.lock
flock 9
sh "$repo/scripts/proxmox-test-env.sh" down "$D" >/dev/null 2>&1 || true
sh "$repo/scripts/proxmox-test-env.sh" up "$D" >/dev/null 9>&-
trap 'sh "$repo/scripts/proxmox-test-env.sh" down "$D" >/dev/null 2>&1' EXIT
cat >"$D/nexcage-proxmox" <<W
#!/bin/sh
PATH=$D/bin:\$PATH exec $repo/target/debug/nexcage --config $D/config-pct.json "\$@"
W
chmod +x "$D/nexcage-proxmox"
t=${CARGO_TARGET_DIR:-$repo/target-rtt}
"$t/debug/rtt-harness" --checker "$t/x86_64-unknown-linux-gnu/release/rtt-checker" \
    --runtime "nexcage-proxmox=$D/nexcage-proxmox" "$@" 9>&-
