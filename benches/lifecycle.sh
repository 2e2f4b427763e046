#!/bin/sh
# Runtime lifecycle benchmark: nexcage (release build) vs runc vs crun on three
# bundles (trimmed, `runc spec`, Podman's) with two drivers (shim, cli).
# usage: benches/lifecycle.sh [ROUNDS] [lifecycle.py options]   (root; NEXCAGE=/path overrides the binary)
#        benches/lifecycle.sh [ROUNDS] --proxmox   (the Proxmox backend, clone
#        strategy, API driver, against the pve-double, beside the native backend
#        and crun; brings scripts/proxmox-test-env.sh up in /var/tmp/nexcage-bench-px
#        with pool nxbench and the release pve-double (PVE_DOUBLE_BIN overrides)
#        and takes it down after)
# Prints per-phase medians, ratios nexcage/runc and nexcage/crun, and the peak
# RSS of `<runtime> create`. Results for this repo: BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "lifecycle.sh: needs root" >&2; exit 1; }
for c in python3 runc crun /usr/bin/time /bin/busybox; do
    command -v "$c" >/dev/null || { echo "lifecycle.sh: $c missing (apt-get install runc crun time python3 busybox-static)" >&2; exit 1; }
done
if [ -z "${NEXCAGE:-}" ]; then
    cargo build --release -q --bin nexcage
    NEXCAGE=target/release/nexcage
fi
# crun refuses hybrid cgroups until hugetlb is on a v1 mount (TESTHOST.md)
mkdir -p /run/cg-hugetlb
mountpoint -q /run/cg-hugetlb || mount -t cgroup -o hugetlb cgroup /run/cg-hugetlb
rounds=${1:-20}
[ $# -gt 0 ] && shift
px=
for arg in "$@"; do [ "$arg" = --proxmox ] && px=/var/tmp/nexcage-bench-px; done
if [ -n "$px" ]; then
    export NEXCAGE_TEST_POOL=nxbench
    # The node's double in its release build: a debug double spends 10-40 ms
    # of its own per API call, which is neither nexcage's cost nor a node's.
    if [ -z "${PVE_DOUBLE_BIN:-}" ]; then
        cargo build --release -q -p pve-double
        export PVE_DOUBLE_BIN="$PWD/target/release/pve-double"
    fi
    scripts/proxmox-test-env.sh down "$px" >/dev/null 2>&1 || true
    scripts/proxmox-test-env.sh up "$px" >/dev/null
    trap 'scripts/proxmox-test-env.sh down "$px" >/dev/null 2>&1' EXIT
    args=
    for arg in "$@"; do [ "$arg" = --proxmox ] && arg="--proxmox=$px"; args="$args $arg"; done
    # shellcheck disable=SC2086 # the options are words without blanks
    python3 benches/lifecycle.py --rounds "$rounds" --nexcage "$NEXCAGE" $args
    exit
fi
exec python3 benches/lifecycle.py --rounds "$rounds" --nexcage "$NEXCAGE" "$@"
