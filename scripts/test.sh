#!/bin/sh
# The test command: installs packages, prepares this machine (cgroup fix for
# crun, test services), runs every test and the conformance suite, then
# tears down what it started. Run as root from the repository.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/deps.sh

# crun refuses hybrid cgroups while hugetlb sits in the v2 hierarchy.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
    mkdir -p /run/cg-hugetlb
    mountpoint -q /run/cg-hugetlb || mount -t cgroup -o hugetlb cgroup /run/cg-hugetlb
fi

# Tests that need services start their own, on loopback and in temp dirs,
# and stop them (registries, containerd, the Proxmox double; zfs-fuse pools
# through scripts/proxmox-test-env.sh, serialised by a lock).

# Engines are installed above: a missing one must fail here, not skip.
export NEXCAGE_REQUIRE_ENGINES=1

echo "== cargo test --workspace" >&2
cargo build --workspace --all-targets -q
cargo test --workspace --no-fail-fast -q -- --test-threads=2

echo "== conformance suite (runtime-tools-tests) against nexcage" >&2
cargo build -q
runtime-tools-tests/run.sh "nexcage=$repo/target/debug/nexcage"

echo "== conformance suite against nexcage's Proxmox backend (the double, zfs-fuse, LXC)" >&2
runtime-tools-tests/run-proxmox.sh -- --expected "$repo/runtime-tools-tests/expected.json"
