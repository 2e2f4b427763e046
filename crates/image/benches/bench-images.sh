#!/usr/bin/env bash
# Pull + unpack of a 5-layer image (~50 MB: busybox + random-ish data) from a
# local docker-registry: nexcage vs `skopeo copy` + `umoci unpack`, side by
# side in one run. Usage: crates/image/benches/bench-images.sh [RUNS]
# Needs: docker-registry skopeo umoci busybox-static (apt), a release build.
set -euo pipefail
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target-image}
for t in docker-registry skopeo umoci python3; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
cargo build -q --release --bin nexcage
NX=$CARGO_TARGET_DIR/release/nexcage
echo '{}' >"${TMPDIR:-/tmp}/nexcage-bench-config.json"
nx() { NEXCAGE_STORAGE_PATH="$W/s" "$NX" --config "${TMPDIR:-/tmp}/nexcage-bench-config.json" "$@"; }

W=$(mktemp -d /tmp/nexcage-bench.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# --- build the image as an OCI layout (gzip layers) ---
python3 - "$W/layout" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in files:
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, 6, mtime=0)
rnd = random.Random(42)
layers = [layer([("bin/busybox", open("/bin/busybox", "rb").read(), 0o755)])]
for i in range(4):
    files = []
    for j in range(40):   # 40 files x ~300 kB per layer: half random, half text
        n = 150_000
        files.append((f"data{i}/bin{j}", rnd.randbytes(n), 0o644))
        files.append((f"data{i}/txt{j}.log", (" ".join(str(rnd.random()) for _ in range(n // 20))).encode()[:n], 0o644))
    layers.append(layer(files))
descs, diff = [], []
for raw, gz in layers:
    d, s = blob(gz)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
    diff.append("sha256:" + hashlib.sha256(raw).hexdigest())
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/busybox", "sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff}}).encode()
cd, cs = blob(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": descs}).encode()
md, ms = blob(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print("image:", len(layers), "layers,", sum(len(r) for r, _ in layers) // 1_000_000, "MB uncompressed,",
      sum(len(g) for _, g in layers) // 1_000_000, "MB compressed")
PY

# --- registry ---
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/reg.yml" <<EOF2
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/regdata}}
http: {addr: 127.0.0.1:$PORT}
EOF2
docker-registry serve "$W/reg.yml" >"$W/reg.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
skopeo copy --quiet --dest-tls-verify=false "oci:$W/layout:bench" "docker://127.0.0.1:$PORT/bench/img:1"
REF=127.0.0.1:$PORT/bench/img:1

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: >"$W/nx.t"; : >"$W/ref.t"
for i in $(seq "$RUNS"); do
  rm -rf "$W/s" "$W/b" "$W/o" "$W/u"; sync
  t0=$(now)
  nx image pull -q --tls-verify=false "$REF" >/dev/null 2>&1
  t1=$(now)
  nx image unpack "$REF" "$W/b/rootfs" 2>/dev/null
  t2=$(now)
  skopeo copy --quiet --src-tls-verify=false "docker://$REF" "oci:$W/o:bench"
  t3=$(now)
  umoci unpack --image "$W/o:bench" "$W/u" >/dev/null
  t4=$(now)
  awk "BEGIN{print $t2 - $t0}" >>"$W/nx.t"
  awk "BEGIN{print $t4 - $t2}" >>"$W/ref.t"
  diff -r "$W/b/rootfs" "$W/u/rootfs" >/dev/null || { echo "rootfs differ!"; exit 1; }
  awk "BEGIN{printf \"run %d: nexcage %.3fs (pull %.3f + unpack %.3f)  skopeo+umoci %.3fs (copy %.3f + unpack %.3f)\\n\", $i, $t2-$t0, $t1-$t0, $t2-$t1, $t4-$t2, $t3-$t2, $t4-$t3}"
done
NXM=$(median <"$W/nx.t"); REFM=$(median <"$W/ref.t")
printf 'median of %d: nexcage pull+unpack %.3fs, skopeo copy+umoci unpack %.3fs, ratio %.2fx\n' \
  "$RUNS" "$NXM" "$REFM" "$(awk "BEGIN{print $NXM / $REFM}")"
