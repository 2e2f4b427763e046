#!/bin/sh
# Runs one command in a small VM whose only cgroup hierarchy is cgroup v2,
# as on a Proxmox VE 8/9 node, and exits with the command's exit code.
#
#   scripts/cgroup2-vm.sh <command> [args...]
#
# The VM (QEMU, KVM when /dev/kvm is usable, else software emulation) boots
# Debian's own kernel (the linux-image-*-amd64 package, fetched once with
# `apt-get download` and unpacked into the cache, never installed) with a
# busybox initramfs. Its root is the host's / read-only through 9p, under
# an overlay whose upper layer is a tmpfs, so the command may write
# anywhere and nothing reaches the host; /tmp, /run, /var/tmp and
# /var/lib/lxc are empty tmpfs, but for the caller's directory and the
# directories NEXCAGE_VM_KEEP names (colon-separated; e.g. a cargo target
# dir), which stay where they are with the host's content when they lie
# below /tmp or /var/tmp (a fresh clone in /tmp). cgroup2 alone is mounted at /sys/fs/cgroup
# with cpu, cpuset, io, memory and pids enabled in the root's
# cgroup.subtree_control (as systemd does); PID 1 sits in /init.scope and
# the command in /system.slice/nexcage-test.service. The command runs as
# root in the caller's directory with the caller's exported environment;
# its output appears on stdout (the VM's serial console).
#
# Exit status: the command's; 77 with a `SKIP cgroup2-vm: <reason>` line
# when a component is missing (qemu-system-x86_64, apt for the kernel);
# 124 when the VM did not finish within NEXCAGE_VM_TIMEOUT seconds
# (default and maximum 600; the VM is killed); 125 when the VM ended
# without reporting the command's status.
#
# Environment: NEXCAGE_VM_CACHE (default /var/tmp/nexcage-cgroup2-vm: the
# kernel, its modules and the initramfs; per-run dirs are removed),
# NEXCAGE_VM_MEM (MiB, default 2048), NEXCAGE_VM_CPUS (default 2),
# NEXCAGE_VM_TIMEOUT (seconds). Needs: qemu-system-x86 (apt), a static
# busybox (busybox-static), apt-get and dpkg-deb for the first run.
set -eu
[ $# -gt 0 ] || { echo "usage: $0 <command> [args...]" >&2; exit 2; }
CACHE=${NEXCAGE_VM_CACHE:-/var/tmp/nexcage-cgroup2-vm}
MEM=${NEXCAGE_VM_MEM:-2048}
CPUS=${NEXCAGE_VM_CPUS:-2}
TIMEOUT=${NEXCAGE_VM_TIMEOUT:-600}
[ "$TIMEOUT" -le 600 ] 2>/dev/null || TIMEOUT=600
# The modules the VM loads (with what they depend on): 9p over virtio for
# the host's root, overlay, fuse (zfs-fuse), veth (guest networks), the
# virtio rng (entropy at boot).
MODULES="virtio_pci 9pnet_virtio 9p overlay fuse veth virtio-rng"

skip() { echo "SKIP cgroup2-vm: $*"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || skip "no static busybox (apt-get install busybox-static)"

mkdir -p "$CACHE"
# One kernel/initramfs build at a time (parallel callers wait).
exec 9>"$CACHE/.lock"
flock 9

# The kernel: vmlinuz and the modules above, in load order (modules/order).
fetch_kernel() {
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || skip "no kernel in $CACHE and no apt-get/dpkg-deb to fetch one"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || skip "apt knows no linux-image-amd64 (apt-get update?)"
    tmp=$(mktemp -d "$CACHE/fetch.XXXXXX")
    (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; skip "apt-get download $pkg failed"; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    rel=$(ls "$tmp/x/lib/modules")
    tree="$tmp/x/lib/modules/$rel"
    rm -rf "$CACHE/kernel.new" && mkdir -p "$CACHE/kernel.new/modules"
    cp "$tmp/x/boot/vmlinuz-$rel" "$CACHE/kernel.new/vmlinuz"
    # Dependencies from each module's own modinfo `depends=` (no depmod
    # needed on the host), loaded depth first.
    : >"$CACHE/kernel.new/modules/order"
    ko() {
        f=$(find "$tree/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -n1)
        [ -n "$f" ] || { echo "cgroup2-vm: module $1 not in $pkg" >&2; exit 1; }
        echo "$f"
    }
    load() {
        grep -qx "$1" "$CACHE/kernel.new/modules/order" && return 0
        f=$(ko "$1") || exit 1
        for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr , ' '); do load "$d"; done
        # (sh has no locals: the path is looked up again after the recursion.)
        f=$(ko "$1")
        cp "$f" "$CACHE/kernel.new/modules/$1.ko"
        echo "$1" >>"$CACHE/kernel.new/modules/order"
    }
    for m in $MODULES; do load "$m"; done
    echo "$pkg" >"$CACHE/kernel.new/package"
    rm -rf "$tmp" "$CACHE/kernel"
    mv "$CACHE/kernel.new" "$CACHE/kernel"
}
[ -f "$CACHE/kernel/package" ] || fetch_kernel

# Stage 1 (the initramfs's /init): modules, the host's root through 9p
# under a tmpfs overlay, the run dir, then stage 2 from the run dir.
STAGE1='#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
fail() { echo "cgroup2-vm: $*"; poweroff -f; }
for m in $(cat /modules/order); do insmod /modules/$m.ko || fail "insmod $m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || fail "9p mount of the host root"
mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/upper /rw/work
mount -t overlay root -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay root"
mount -t tmpfs -o mode=755 run /newroot/run && mkdir -p /newroot/run/nexcage-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmrun /newroot/run/nexcage-vm || fail "9p mount of the run dir"
exec switch_root /newroot /bin/sh /run/nexcage-vm/stage2
'
sum=$(printf '%s' "$STAGE1" | cat - "$BUSYBOX" "$CACHE/kernel/modules/order" | md5sum | cut -c1-12)
INITRD="$CACHE/initramfs-$sum.cpio.gz"
if [ ! -f "$INITRD" ]; then
    t=$(mktemp -d "$CACHE/initramfs.XXXXXX")
    mkdir -p "$t/bin" "$t/modules"
    cp "$BUSYBOX" "$t/bin/busybox"
    cp "$CACHE/kernel/modules/"* "$t/modules/"
    printf '%s' "$STAGE1" >"$t/init" && chmod +x "$t/init"
    (cd "$t" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD.tmp")
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$t"
    for old in "$CACHE"/initramfs-*.cpio.gz; do [ "$old" = "$INITRD" ] || rm -f "$old"; done
fi
flock -u 9

RUN=$(mktemp -d "$CACHE/run.XXXXXX")
cleanup() {
    # A qemu still running (the caller was interrupted): ended here.
    if [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; then
        kill "$(cat "$RUN/qemu.pid")" 2>/dev/null || true
        sleep 1
    fi
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The command, in the caller's directory and environment.
export -p >"$RUN/env"
# Host dirs kept visible over the VM's empty /tmp and /var/tmp.
printf '%s\n' "$(pwd)" >"$RUN/keep"
printf '%s' "${NEXCAGE_VM_KEEP:-}" | tr ':' '\n' | grep . >>"$RUN/keep" || true
{
    printf 'cd %s || exit 125\nexec' "$(printf "'%s'" "$(pwd | sed "s/'/'\\\\''/g")")"
    for a in "$@"; do printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done
    echo
} >"$RUN/cmd"
# Stage 2 (PID 1 on the overlay root): the kernel's filesystems, cgroup2
# only, then the command; its status goes to the run dir, then power off.
cat >"$RUN/stage2" <<'S2'
bb=/usr/bin/busybox
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
# The dirs to keep are bound aside, the tmpfs mounted, and moved back.
mkdir -p /run/keep
n=0
while read -r k; do
    case "$k" in /tmp/*|/var/tmp/*) ;; *) continue ;; esac
    [ -d "$k" ] || continue
    n=$((n + 1)) && mkdir -p /run/keep/$n && mount --bind "$k" /run/keep/$n && echo "$k" >/run/keep/$n.path
done </run/nexcage-vm/keep
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmp $d; done
i=0
while [ $i -lt $n ]; do
    i=$((i + 1)) && k=$(cat /run/keep/$i.path) && mkdir -p "$k" && mount --move /run/keep/$i "$k"
done
mkdir -p /var/lib/lxc /run/lock /run/lxc && mount -t tmpfs -o mode=755 lxc /var/lib/lxc
$bb hostname nexcage-cgroup2-vm
$bb ip link set lo up
cd /sys/fs/cgroup
echo "+cpu +cpuset +io +memory +pids" >cgroup.subtree_control
mkdir -p init.scope system.slice/nexcage-test.service
echo "+cpu +cpuset +io +memory +pids" >system.slice/cgroup.subtree_control
echo $$ >init.scope/cgroup.procs
cd /
(echo 0 >/sys/fs/cgroup/system.slice/nexcage-test.service/cgroup.procs; . /run/nexcage-vm/env; . /run/nexcage-vm/cmd) </dev/null &
# (dash's wait also reaps the orphans re-parented to PID 1 meanwhile.)
wait $!
rc=$?
echo $rc >/run/nexcage-vm/rc.tmp && mv /run/nexcage-vm/rc.tmp /run/nexcage-vm/rc
echo "cgroup2-vm: exit $rc"
$bb sync
$bb poweroff -f
S2

# KVM only with hardware virtualisation (vmx/svm): a /dev/kvm without it
# (e.g. PVM's, for guests built for it) cannot boot Debian's kernel.
ACCEL="-accel tcg,thread=multi"
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
    ACCEL="-accel kvm -accel tcg"
else
    echo "cgroup2-vm: no hardware virtualisation for /dev/kvm: software emulation (slow)" >&2
fi
echo "cgroup2-vm: booting $(cat "$CACHE/kernel/package") (cgroup v2 only, ${MEM} MiB, $CPUS CPUs, limit ${TIMEOUT} s)" >&2
# The VM's console, at most MAXOUT bytes of it (a runaway command cannot
# flood the caller); qemu's own status goes to a file.
MAXOUT=$((16 * 1024 * 1024))
# shellcheck disable=SC2086
{
    st=0
    timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 $ACCEL -M pc -cpu max -m "$MEM" -smp "$CPUS" \
        -kernel "$CACHE/kernel/vmlinuz" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all" \
        -display none -monitor none -serial stdio -no-reboot -nic none \
        -device virtio-rng-pci \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
        -virtfs "local,path=$RUN,mount_tag=vmrun,security_model=none" \
        -pidfile "$RUN/qemu.pid" </dev/null || st=$?
    echo $st >"$RUN/qemu.status"
} | stdbuf -o0 head -c "$MAXOUT" &
# (In the background: a signal to this script is acted on at once, and
# its trap ends qemu.)
wait $! || true
qrc=$(cat "$RUN/qemu.status" 2>/dev/null || echo 1)
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
    echo "cgroup2-vm: the VM did not finish within $TIMEOUT s: killed" >&2
    exit 124
fi
[ -f "$RUN/rc" ] || { echo "cgroup2-vm: the VM ended (qemu status $qrc) without the command's status" >&2; exit 125; }
exit "$(cat "$RUN/rc")"
