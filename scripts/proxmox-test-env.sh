#!/bin/sh
# Test environment for the Proxmox backend: zfs-fuse with a file-backed
# pool, the pve-double (API server + pct/pvesh wrappers), and one nexcage
# config per driver.
#
#   scripts/proxmox-test-env.sh up [DIR]     # default DIR=/var/tmp/nexcage-pxtest
#   scripts/proxmox-test-env.sh down [DIR]
#
# After `up`, DIR holds: config-pct.json, config-api.json, bin/ (pct and
# pvesh wrappers: put it first on PATH), env.sh (exports for a shell).
# NEXCAGE_TEST_NETNS=NAME (an `ip netns` name): the double's API listens on
# 127.0.0.1 inside that network namespace instead of the host's, for a
# runtime that runs there (containerd's CRI in tests/cri.rs).
# Needs: zfs-fuse (apt), lxc, a built pve-double (cargo build -p pve-double).
set -eu
cmd=${1:-}
DIR=${2:-/var/tmp/nexcage-pxtest}
POOL=${NEXCAGE_TEST_POOL:-nxtest}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DOUBLE=${PVE_DOUBLE_BIN:-$HERE/target/debug/pve-double}
SCHEMA=${PVE_DOUBLE_SCHEMA:-$HERE/crates/pve/schema/pve-api-subset.json}

start_zfs_fuse() {
    if zpool list >/dev/null 2>&1; then return 0; fi
    command -v zfs-fuse >/dev/null || { echo "SKIP: zfs-fuse not installed (apt-get install zfs-fuse)" >&2; exit 3; }
    # --no-kstat-mount: no /zfs-kstat FUSE mount to leave behind.
    mkdir -p /var/run/zfs
    zfs-fuse --no-kstat-mount --pidfile "$DIR/zfs-fuse.pid"
    i=0
    until zpool list >/dev/null 2>&1; do
        i=$((i+1)); [ $i -lt 100 ] || { echo "zfs-fuse did not come up" >&2; exit 1; }
        sleep 0.1
    done
    touch "$DIR/zfs-fuse.ours"
}

up() {
    mkdir -p "$DIR/bin" "$DIR/lxc" "$DIR/state"
    # The (empty) template nexcage's create names: a node needs it (pve-double README, Templates).
    mkdir -p "$DIR/state/storage/local/vztmpl" && tar -cf "$DIR/state/storage/local/vztmpl/nexcage-empty.tar" -T /dev/null
    # Unprivileged guests: root may map 100000..165535, as on every Proxmox
    # host (LXC's newuidmap checks these files). Left in place by `down`.
    for f in /etc/subuid /etc/subgid; do
        grep -qx 'root:100000:65536' "$f" 2>/dev/null || echo 'root:100000:65536' >>"$f"
    done
    start_zfs_fuse
    # A zfs-fuse killed with its pool imported re-imports it from its cache
    # at the next start, FAULTED once the pool file is gone: this test
    # pool's leftover, destroyed so that it can be made again.
    case "$(zpool list -H -o health "$POOL" 2>/dev/null)" in
    FAULTED | UNAVAIL) zpool destroy -f "$POOL" ;;
    esac
    if ! zpool list -H -o name "$POOL" >/dev/null 2>&1; then
        truncate -s 2G "$DIR/pool.img"
        zpool create -m "$DIR/mnt" "$POOL" "$DIR/pool.img"
    fi
    zfs list "$POOL/data" >/dev/null 2>&1 || zfs create "$POOL/data"
    [ -x "$DOUBLE" ] || (cd "$HERE" && cargo build -q -p pve-double)
    [ -f "$SCHEMA" ] || { echo "schema not found: $SCHEMA" >&2; exit 1; }
    if ! [ -f "$DIR/double.pid" ] || ! kill -0 "$(cat "$DIR/double.pid")" 2>/dev/null; then
        rm -f "$DIR/state/port"
        netns=""
        [ -z "${NEXCAGE_TEST_NETNS:-}" ] || netns="nsenter --net=/run/netns/$NEXCAGE_TEST_NETNS"
        $netns "$DOUBLE" serve --state "$DIR/state" --listen 127.0.0.1:0 --node pve --schema "$SCHEMA" --lxc-path "$DIR/lxc" \
            --token 'root@pam!nexcage=0b4c3e4e-5b0e-4c53-9d7a-3f2a1c9e8d71' \
            </dev/null >"$DIR/double.log" 2>&1 &
        echo $! >"$DIR/double.pid"
        i=0
        until [ -s "$DIR/state/port" ]; do
            i=$((i+1)); [ $i -lt 200 ] || { echo "pve-double did not start" >&2; exit 1; }
            sleep 0.05
        done
    fi
    # Wrappers, not symlinks: engines (conmon, shims) do not pass our env on.
    for p in pct pvesh pveversion pvesm; do
        cat >"$DIR/bin/$p" <<W
#!/bin/sh
echo "$p \$*" >>'$DIR/cli-calls.log'
PVE_DOUBLE_STATE='$DIR/state' PVE_DOUBLE_SCHEMA='$SCHEMA' exec '$DOUBLE' $p "\$@"
W
        chmod +x "$DIR/bin/$p"
    done
    printf 'root@pam!nexcage=0b4c3e4e-5b0e-4c53-9d7a-3f2a1c9e8d71\n' >"$DIR/token"
    chmod 600 "$DIR/token"
    port=$(cat "$DIR/state/port"); fp=$(cat "$DIR/state/fingerprint")
    common="\"default_backend\":\"proxmox\",\"lxc_path\":\"$DIR/lxc\",\"storage\":{\"type\":\"zfs\",\"pool\":\"$POOL\",\"dataset\":\"data\"},\"default_disk_size\":1,\"images\":{\"storage_path\":\"$DIR/data\"}"
    # The data dir (roots registry, node cache) is the environment's own, so
    # a test leaves nothing in /var/lib/nexcage or a shared root.
    # The double's state dir is the node's /etc/pve, its lock/ dir /run/lock/lxc.
    node="\"node\":\"pve\",\"storage\":\"local-zfs\",\"pve_root\":\"$DIR/state\",\"lock_dir\":\"$DIR/state/lock\""
    printf '{%s,"proxmox":{"driver":"pct",%s}}\n' "$common" "$node" >"$DIR/config-pct.json"
    printf '{%s,"proxmox":{"driver":"api",%s,"host":"127.0.0.1","port":%s,"fingerprint":"%s","token_file":"%s/token"}}\n' \
        "$common" "$node" "$port" "$fp" "$DIR" >"$DIR/config-api.json"
    printf 'export PATH=%s/bin:$PATH\nexport NEXCAGE_CONFIG=%s/config-pct.json\n' "$DIR" "$DIR" >"$DIR/env.sh"
    echo "$DIR"
}

down() {
    # Guests still running (a failed test): stop them so the pool is not busy.
    if [ -d "$DIR/lxc" ]; then
        for c in "$DIR"/lxc/*/; do
            [ -f "$c/config" ] || continue
            pid=$(lxc-info -n "$(basename "$c")" -P "$DIR/lxc" -p -H 2>/dev/null || true)
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
        done
    fi
    if [ -f "$DIR/double.pid" ]; then kill "$(cat "$DIR/double.pid")" 2>/dev/null || true; rm -f "$DIR/double.pid"; fi
    # zfs-fuse may call the pool busy right after heavy use: unmount, retry.
    i=0
    while zpool list -H -o name "$POOL" >/dev/null 2>&1 && [ $i -lt 20 ]; do
        for ds in $(zfs list -H -o name -r "$POOL" 2>/dev/null | sort -r); do
            zfs unmount -f "$ds" >/dev/null 2>&1 || true
        done
        zpool destroy -f "$POOL" 2>/dev/null && break
        i=$((i+1)); sleep 0.3
    done
    if zpool list -H -o name "$POOL" >/dev/null 2>&1; then echo "could not destroy pool $POOL" >&2; fi
    # zfs-fuse is shared by every pool: stop it only if this DIR started
    # it and no other pool still uses it.
    if [ -f "$DIR/zfs-fuse.ours" ] && [ -f "$DIR/zfs-fuse.pid" ] && [ -z "$(zpool list -H -o name 2>/dev/null)" ]; then
        zpid=$(cat "$DIR/zfs-fuse.pid")
        kill "$zpid" 2>/dev/null || true
        # The next `up` must not meet a zfs-fuse that is still exiting.
        i=0
        while kill -0 "$zpid" 2>/dev/null && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
    fi
    # Engines' leftovers (podman's shm and overlay mounts) under DIR.
    grep -o " $DIR/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$DIR"
}

case "$cmd" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down [DIR]" >&2; exit 2 ;;
esac
