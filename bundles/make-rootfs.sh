#!/bin/sh
# Builds a minimal rootfs from Debian's busybox-static: usage make-rootfs.sh DIR
set -eu
dir=${1:?usage: make-rootfs.sh DIR}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-rootfs.sh: $bb missing: apt-get install busybox-static" >&2; exit 1; }
file "$bb" 2>/dev/null | grep -q dynamic && { echo "make-rootfs.sh: $bb is not static (install busybox-static)" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/root"
cp "$bb" "$dir/bin/busybox"
for app in $("$bb" --list); do
    [ -e "$dir/bin/$app" ] || ln -s busybox "$dir/bin/$app"
done
chmod 1777 "$dir/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
echo "rootfs ready in $dir"
