#!/bin/sh
# On a fresh Debian machine (as root): install what is needed, build nexcage,
# build the example bundle's rootfs and run it on the native backend.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scripts/deps.sh --runtime-only
cargo build --release -q
bundles/make-rootfs.sh bundles/busybox/rootfs >/dev/null
id="demo-$$"
echo "== nexcage run --bundle bundles/busybox $id" >&2
exec target/release/nexcage run --bundle bundles/busybox "$id"
