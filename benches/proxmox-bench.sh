#!/bin/bash
# Proxmox backend benchmark against the pve-double (real LXC, real zfs-fuse):
#  * create+start(+wait)+delete per rootfs strategy and driver (ms/cycle, median)
#  * control-plane calls per create (from the progress file) and pct/pvesh
#    processes spawned on the API path (must be 0)
#  * create time with the clone strategy for a 10 MB and a 200 MB image
#    (the base is made once; later creates are `zfs clone`: should be flat)
#
#   benches/proxmox-bench.sh [ROUNDS]      (NEXCAGE=path/to/nexcage to override)
set -eu
ROUNDS=${1:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
NX=${NEXCAGE:-$HERE/target/release/nexcage}
[ -x "$NX" ] || NX=$HERE/target/debug/nexcage
DIR=/var/tmp/nxpx-bench
export NEXCAGE_TEST_POOL=nxbench
"$HERE/scripts/proxmox-test-env.sh" down "$DIR" >/dev/null 2>&1 || true
"$HERE/scripts/proxmox-test-env.sh" up "$DIR" >/dev/null
trap '"$HERE/scripts/proxmox-test-env.sh" down "$DIR" >/dev/null 2>&1' EXIT
export PATH=$DIR/bin:$PATH
ROOT=$DIR/run

mkbundle() { # name strategy extra_mb
    local b=$DIR/bundles/$1
    mkdir -p "$b"
    [ -x "$b/rootfs/bin/busybox" ] || "$HERE/bundles/make-rootfs.sh" "$b/rootfs" >/dev/null 2>&1
    if [ "${3:-0}" -gt 0 ] && [ ! -f "$b/rootfs/blob" ]; then
        head -c $(( $3 * 1048576 )) /dev/urandom >"$b/rootfs/blob"
    fi
    python3 - "$HERE/bundles/busybox/config.json" "$b/config.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["path"] = "rootfs"
c["annotations"] = {"org.nexcage.rootfs-strategy": sys.argv[3], "org.nexcage.disk-size": "1G"}
json.dump(c, open(sys.argv[2], "w"))
PY
    echo "$b"
}

now_ms() { date +%s%3N; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cycle() { # bundle id -> prints ms; create+start+wait+delete
    local t0 t1
    t0=$(now_ms)
    "$NX" --root "$ROOT" run -b "$1" "$2" </dev/null >/dev/null 2>&1 || { echo "run failed" >&2; exit 1; }
    t1=$(now_ms)
    echo $((t1 - t0))
}

echo "nexcage: $NX"
printf '%-8s %-6s %12s %16s %14s\n' driver strat "ms/cycle" "cp calls/create" "pct/pvesh (api)"
for driver in pct api; do
    export NEXCAGE_CONFIG=$DIR/config-$driver.json
    for strat in copy clone bind; do
        if [ "$driver" = api ] && [ "$strat" = bind ]; then
            # A path rootfs is a bind mount point: root@pam only, a token gets 403.
            printf '%-8s %-6s %12s\n' "$driver" "$strat" "n/a (root@pam only)"
            continue
        fi
        b=$(mkbundle "b-$strat" "$strat" 0)
        cycle "$b" warm-$strat >/dev/null   # clone: makes the base once
        : >"$DIR/cli-calls.log"
        times=$(for i in $(seq "$ROUNDS"); do cycle "$b" "c-$strat-$i"; done | median)
        # calls of one create, from its progress file
        "$NX" --root "$ROOT" create -b "$b" probe </dev/null >/dev/null 2>&1
        calls=$(python3 -c "import json;print(json.load(open('$ROOT/probe/proxmox.json'))['cp_calls'])")
        "$NX" --root "$ROOT" delete --force probe >/dev/null 2>&1
        cli=-
        if [ "$driver" = api ]; then cli=$(wc -l <"$DIR/cli-calls.log"); fi
        printf '%-8s %-6s %12s %16s %14s\n' "$driver" "$strat" "$times" "$calls" "$cli"
    done
done

echo
echo "clone strategy, create only (base made beforehand), median of $ROUNDS:"
export NEXCAGE_CONFIG=$DIR/config-api.json
for mb in 10 200; do
    b=$(mkbundle "img-$mb" clone "$mb")
    cycle "$b" base-$mb >/dev/null
    c=$(for i in $(seq "$ROUNDS"); do
        t0=$(now_ms); "$NX" --root "$ROOT" create -b "$b" "k$mb-$i" </dev/null >/dev/null 2>&1; t1=$(now_ms)
        echo $((t1 - t0)); "$NX" --root "$ROOT" delete --force "k$mb-$i" >/dev/null 2>&1
    done | median)
    bc=$(b2=$(mkbundle "cp-$mb" copy "$mb"); for i in 1 2 3; do
        t0=$(now_ms); "$NX" --root "$ROOT" create -b "$b2" "p$mb-$i" </dev/null >/dev/null 2>&1; t1=$(now_ms)
        echo $((t1 - t0)); "$NX" --root "$ROOT" delete --force "p$mb-$i" >/dev/null 2>&1
    done | median)
    printf '%4s MB image: clone create %6s ms   (copy create %6s ms)\n' "$mb" "$c" "$bc"
done

echo
echo "exec into a running guest (\`true\`), median of $ROUNDS:"
b=$(mkbundle "exec" copy 0)
python3 - "$b/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["args"] = ["sleep", "1000"]; json.dump(c, open(sys.argv[1], "w"))
PY
"$NX" --root "$ROOT" create -b "$b" ex </dev/null >/dev/null 2>&1
"$NX" --root "$ROOT" start ex
vmid=$(python3 -c "import json;print(json.load(open('$ROOT/ex/proxmox.json'))['vmid'])")
nx_exec=$(for i in $(seq "$ROUNDS"); do
    t0=$(now_ms); "$NX" --root "$ROOT" exec ex true </dev/null; t1=$(now_ms); echo $((t1 - t0))
done | median)
# What exec ran before (and what `pct exec` runs): lxc-attach.
attach=$(for i in $(seq "$ROUNDS"); do
    t0=$(now_ms); lxc-attach -n "$vmid" -P "$DIR/lxc" --clear-env -- true </dev/null; t1=$(now_ms); echo $((t1 - t0))
done | median)
"$NX" --root "$ROOT" delete --force ex >/dev/null 2>&1
printf 'nexcage exec %6s ms   lxc-attach %6s ms   ratio %s\n' "$nx_exec" "$attach" \
    "$(python3 -c "print(round($nx_exec / max($attach, 1), 2))")"
