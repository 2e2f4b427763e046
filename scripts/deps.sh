#!/bin/sh
# Installs the Debian packages nexcage builds with and its tests use.
#   scripts/deps.sh [--runtime-only]
# --runtime-only: only what building and running the example bundle needs.
set -eu
# liblxc (package liblxc1, which lxc brings) is opened at run time by the Proxmox backend only.
runtime="busybox-static libseccomp-dev pkg-config"
tests="runc crun podman containerd qemu-system-x86 containernetworking-plugins protobuf-compiler lxc zfs-fuse docker-registry skopeo umoci apache2-utils openssl time iproute2 nftables jq file zstd"
pkgs="$runtime"
[ "${1:-}" = "--runtime-only" ] || pkgs="$pkgs $tests"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== apt-get install$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
command -v cargo >/dev/null || { echo "deps.sh: cargo is required (rustup toolchain)" >&2; exit 1; }
