#!/bin/sh
# Runtime lifecycle benchmark: nexcage (release build) vs runc vs crun on three
# bundles (trimmed, `runc spec`, Podman's) with two drivers (shim, cli).
# usage: benches/lifecycle.sh [ROUNDS] [lifecycle.py options]   (root; NEXCAGE=/path overrides the binary)
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
exec python3 benches/lifecycle.py --rounds "$rounds" --nexcage "$NEXCAGE" "$@"
