#!/bin/sh
# Captures the config.json Podman sends its runtime for a plain
# `podman run -d --network none IMAGE sleep 1000` and writes it, with its
# host paths made bundle-relative, to benches/podman-run/config.json (the
# fixture benches/lifecycle.py runs). Podman's --runtime is a wrapper that
# copies the bundle's config.json and then runs crun.
# usage: benches/capture-podman-config.sh   (root; podman, crun, busybox-static)
set -eu
cd "$(dirname "$0")/.."
out=benches/podman-run/config.json
work=$(mktemp -d /tmp/nexcage-capture-XXXXXX)
trap 'podman --root "$work/root" --runroot "$work/runroot" --storage-driver vfs rm -af >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cat > "$work/wrap.sh" <<WRAP
#!/bin/sh
prev=
for a in "\$@"; do
    [ "\$prev" = --bundle ] && cp "\$a/config.json" "$work/captured.json"
    prev=\$a
done
exec crun "\$@"
WRAP
chmod +x "$work/wrap.sh"
# TESTHOST.md: this host cannot raise rlimits, so Podman gets ulimits it can set.
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024","nproc=1024:1024"]\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
P="podman --root $work/root --runroot $work/runroot --storage-driver vfs"
sh bundles/make-rootfs.sh "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -c . | $P import - localhost/busybox >/dev/null
id=$($P run -d --runtime "$work/wrap.sh" --network none localhost/busybox sleep 1000)
$P rm -f -t 0 "$id" >/dev/null
python3 - "$work/captured.json" "$out" "$work" <<'PY'
import json, sys
src, out, work = sys.argv[1:]
spec = json.load(open(src))
# Host paths become bundle-relative (runtimes resolve relative paths against the bundle).
spec["root"]["path"] = "rootfs"
for m in spec["mounts"]:
    if m.get("type") == "bind" and m["source"].startswith(work):
        m["source"] = "userdata/" + m["source"].rsplit("/", 1)[-1]
json.dump(spec, open(out, "w"), indent=1)
open(out, "a").write("\n")
PY
echo "wrote $out ($(podman --version))"
