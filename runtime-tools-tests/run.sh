#!/bin/sh
# Build the static checker and the harness, then run the conformance table.
#
#   runtime-tools-tests/run.sh [--build-only] [RUNTIME...] [-- HARNESS-ARGS...]
#
# RUNTIME is a path or NAME=PATH (default: nexcage from this repo's target/
# if built, runc, crun where installed). HARNESS-ARGS go to rtt-harness, e.g.
#   run.sh runc -- --case lifecycle. --format markdown
# Exits non-zero when a case expected to pass (expected.json) fails.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target-rtt}"
triple=x86_64-unknown-linux-gnu

runtimes=""
build_only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        --build-only) build_only=1; shift ;;
        *) runtimes="$runtimes $1"; shift ;;
    esac
done

cd "$repo"
echo "== building the static checker ($CARGO_TARGET_DIR)" >&2
# --target keeps RUSTFLAGS away from build scripts and proc macros
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q -p rtt-checker --release --target "$triple"
echo "== building the harness" >&2
cargo build -q -p rtt-harness
checker="$CARGO_TARGET_DIR/$triple/release/rtt-checker"
harness="$CARGO_TARGET_DIR/debug/rtt-harness"

# Hybrid cgroups with controllers in the v2 hierarchy: crun refuses to run
# ("cgroups in hybrid mode not supported") until hugetlb moves to a v1 mount.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
    echo "== moving hugetlb to a v1 mount at /run/cg-hugetlb (crun's hybrid-mode fix)" >&2
    mkdir -p /run/cg-hugetlb
    mountpoint -q /run/cg-hugetlb || mount -t cgroup -o hugetlb cgroup /run/cg-hugetlb
fi

if [ -n "$build_only" ]; then
    echo "checker: $checker" >&2
    echo "harness: $harness" >&2
    exit 0
fi

if [ -z "$runtimes" ]; then
    nc=""
    for p in "$repo/target/release/nexcage" "$repo/target/debug/nexcage"; do
        if [ -x "$p" ] && { [ -z "$nc" ] || [ "$p" -nt "$nc" ]; }; then nc=$p; fi
    done
    [ -n "$nc" ] && runtimes="nexcage=$nc"
    for r in runc crun; do
        command -v "$r" >/dev/null 2>&1 && runtimes="$runtimes $r"
    done
fi
[ -n "$runtimes" ] || { echo "run.sh: no runtime found" >&2; exit 2; }

args=""
for r in $runtimes; do args="$args --runtime $r"; done
echo "== running:$args" >&2
# shellcheck disable=SC2086
exec "$harness" --checker "$checker" $args --expected "$here/expected.json" "$@"
