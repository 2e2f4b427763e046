"""The Proxmox part of benches/lifecycle.py (`--proxmox DIR`): nexcage's
Proxmox backend (clone strategy, API driver, against the pve-double of
`scripts/proxmox-test-env.sh up DIR`: real LXC, real zfs-fuse) side by side
with nexcage's native backend and crun, interleaved round by round, on one
bundle whose process prints a line and sleeps:

  create (stdout a pipe) -> start -> first output line read -> kill KILL ->
  `state` until stopped -> delete

Phases: create, start, first line (from the start of create to the line on
the pipe), kill+stop, delete; cycle = create+start+kill+stop+delete. Then
one traced cycle of the Proxmox backend (`strace -f -ttt -T`) says where
its time goes: the programs it runs (zfs, lxc-*), the time it waits on the
API (connect, send, receive on its connections to the double), and the rest
(nexcage itself and liblxc).
"""
import collections, json, os, re, select, shutil, statistics, subprocess, sys, tempfile, time

# stderr to a file, never a pipe: the container (and a guest's monitor)
# inherit create's stdio, and reading a pipe to EOF would wait for them.
ERR = tempfile.TemporaryFile()


def err_text():
    ERR.seek(0)
    text = ERR.read().decode(errors="replace").strip()
    ERR.seek(0)
    ERR.truncate()
    return text

PHASES = ("create", "start", "first line", "kill+stop", "delete")


class Flavour:
    """One runtime as the cycle drives it: binary, --root, environment."""

    def __init__(self, name, argv, root, env):
        self.name, self.argv, self.root, self.env = name, argv, root, env
        self.res = {k: [] for k in ("cycle",) + PHASES}
        self.n = 0

    def cmd(self, *args):
        return [*self.argv, "--root", self.root, *args]

    def run(self, args, stdout=subprocess.DEVNULL, check=True):
        r = subprocess.run(self.cmd(*args), env=self.env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=ERR)
        text = err_text()
        if check and r.returncode != 0:
            sys.exit(f"FAILED ({r.returncode}): {self.name} {' '.join(args)}: {text}")
        return r

    def status(self, cid):
        return json.loads(self.run(["state", cid], stdout=subprocess.PIPE).stdout)["status"]

    def cycle(self, bundle, record=True, wrap=None):
        """One cycle; `wrap(phase, argv)` may prefix a command (tracing)."""
        self.n += 1
        cid = f"pxb-{self.name}-{os.getpid()}-{self.n}"
        w = wrap or (lambda _p, a: a)
        r, wfd = os.pipe()
        t0 = time.perf_counter()
        p = subprocess.run(w("create", self.cmd("create", "--bundle", bundle, cid)), env=self.env,
                           stdin=subprocess.DEVNULL, stdout=wfd, stderr=ERR)
        os.close(wfd)
        text = err_text()
        if p.returncode != 0:
            os.close(r)
            sys.exit(f"FAILED: {self.name} create: {text}")
        t1 = time.perf_counter()
        subprocess.run(w("start", self.cmd("start", cid)), env=self.env, check=True, stdin=subprocess.DEVNULL, stderr=ERR)
        t2 = time.perf_counter()
        ready, _, _ = select.select([r], [], [], 20)
        line = os.read(r, 4096) if ready else b""
        tf = time.perf_counter()
        if not line.startswith(b"ready"):
            sys.exit(f"FAILED: {self.name}: no first line within 20 s (got {line!r})")
        self.run(["kill", cid, "KILL"])
        deadline = time.monotonic() + 20
        while self.status(cid) != "stopped":
            if time.monotonic() > deadline:
                sys.exit(f"FAILED: {self.name} {cid} not stopped 20 s after kill")
            time.sleep(0.002)
        t3 = time.perf_counter()
        subprocess.run(w("delete", self.cmd("delete", cid)), env=self.env, check=True, stdin=subprocess.DEVNULL, stderr=ERR)
        t4 = time.perf_counter()
        os.close(r)
        if record:
            self.res["cycle"].append(t4 - t0)
            for k, v in zip(PHASES, (t1 - t0, t2 - t1, tf - t0, t3 - t2, t4 - t3)):
                self.res[k].append(v)


def make_bundle(work, repo):
    """busybox rootfs; process prints `ready`, then sleeps; clone strategy."""
    path = os.path.join(work, "bundle-proxmox")
    os.makedirs(path)
    subprocess.run(["sh", os.path.join(repo, "bundles/make-rootfs.sh"), os.path.join(path, "rootfs")], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(repo, "bundles/busybox/config.json")) as f:
        spec = json.load(f)
    spec["root"]["path"] = "rootfs"
    spec["process"]["args"] = ["sh", "-c", "echo ready; exec sleep 1000"]
    spec["process"]["terminal"] = False
    spec["ociVersion"] = "1.0.2"  # crun 1.8.1 rejects 1.2.0
    spec["mounts"] = [m for m in spec["mounts"] if m.get("type") != "cgroup"]
    spec["annotations"] = {"org.nexcage.rootfs-strategy": "clone", "org.nexcage.disk-size": "1G"}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f)
    return path


def flavours(a, env_dir, state):
    env = dict(os.environ, PATH=f"{env_dir}/bin:{os.environ['PATH']}", NEXCAGE_CONFIG=f"{env_dir}/config-api.json")
    native_cfg = os.path.join(state, "native-config.json")
    with open(native_cfg, "w") as f:
        f.write("{}")
    out = [Flavour("proxmox", [a.nexcage], os.path.join(state, "root-px"), env),
           Flavour("native", [a.nexcage], os.path.join(state, "root-nx"), dict(os.environ, NEXCAGE_CONFIG=native_cfg))]
    if a.crun:
        out.append(Flavour("crun", [a.crun], os.path.join(state, "root-crun"), dict(os.environ)))
    return out




def trace_summary(path, port):
    """Wall time per program run (execve to exit) and the time spent
    waiting on the API (connect, send and receive on a connection to the
    double, from strace -T: the double keeps connections alive, so
    connect..close would span the whole command) of one `strace -f -ttt -T`
    file; ms. Also the number of API connections."""
    starts, pending, progs, busy = {}, {}, collections.Counter(), collections.Counter()
    api_fds, unfinished, conns = set(), {}, 0
    first = last = main = None
    with open(path) as f:
        lines = f.read().splitlines()
    for l in lines:
        m = re.match(r"^(\d+) +(\d+\.\d+) (.*)$", l)
        if not m:
            continue
        pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        if main is None:
            main, first = pid, t
        last = t
        if pid == main and (rest.startswith("+++") or rest.startswith("exit_group(")):
            break  # the command returned; what its daemons do later is another phase's
        if rest.startswith("execve("):
            am = re.search(r'\["([^"]+)"(?:, "([^"]+)")?', rest)
            name = os.path.basename(am.group(1)) if am else "?"
            if am and am.group(2) and name in ("zfs", "zpool", "nexcage"):
                name += " " + am.group(2)
            pending[pid] = name
        if (rest.startswith("execve(") or rest.startswith("<... execve resumed>")) and " = 0 <" in rest and pid in pending:
            name = pending.pop(pid)
            if pid != main:
                starts[pid] = (name, t)
        elif rest.startswith("exit_group(") or rest.startswith("+++"):
            if pid in starts:
                name, t0 = starts.pop(pid)
                progs[name] += t - t0
            continue
        call = re.match(r"^(connect|sendto|recvfrom|close)\((\d+)", rest)
        resumed = re.match(r"^<\.\.\. (connect|sendto|recvfrom) resumed>", rest)
        if call:
            name, fd = call.group(1), (pid, call.group(2))
            if name == "connect" and f"sin_port=htons({port})" in rest:
                api_fds.add(fd)
                conns += 1
            if name == "close":
                api_fds.discard(fd)
                continue
            if fd not in api_fds:
                continue
            if rest.endswith("<unfinished ...>"):
                unfinished[pid] = fd
                continue
        elif resumed and unfinished.pop(pid, None) in api_fds:
            pass
        else:
            continue
        d = re.search(r"<(\d+\.\d+)>$", rest)
        if d:
            busy["API"] += float(d.group(1))
    return {k: v * 1000 for k, v in progs.items()}, {k: v * 1000 for k, v in busy.items()}, ((last or 0) - (first or 0)) * 1000, conns


def traced_cycle(px, bundle, work, port):
    """One Proxmox cycle with each command under strace; prints the summary."""
    files = {}

    def wrap(phase, argv):
        files[phase] = os.path.join(work, f"strace-{phase}")
        # -D: strace is not the command's parent, so the command returns when
        # it exits, though a guest's monitor it leaves is still traced
        return ["strace", "-D", "-f", "-ttt", "-T", "-qq", "-e", "trace=execve,connect,close,exit_group,sendto,recvfrom", "-o", files[phase], *argv]

    px.cycle(bundle, record=False, wrap=wrap)
    print("\nwhere the Proxmox backend's time goes (one cycle under strace -f; strace slows every syscall, so read shares, not ms):")
    for phase in ("create", "start", "delete"):
        progs, api, total, conns = trace_summary(files[phase], port)
        zfs = sum(v for k, v in progs.items() if k.startswith("zfs"))
        other = {k: v for k, v in progs.items() if not k.startswith("zfs") and v >= 0.5}
        api_ms = sum(api.values())
        rest = total - zfs - api_ms - sum(other.values())
        parts = [f"zfs commands {zfs:.0f} ({', '.join(f'{k} {v:.0f}' for k, v in sorted(progs.items()) if k.startswith('zfs'))})" if zfs else "zfs commands 0",
                 f"API waits {api_ms:.0f} ({conns} connection{'s' if conns != 1 else ''})"] + [f"{k} {v:.0f}" for k, v in sorted(other.items(), key=lambda kv: -kv[1])]
        print(f"  {phase:<7} {total:6.0f} ms: " + "; ".join(parts) + f"; nexcage and liblxc in-process (guest start) {rest:.0f}")


def cpu_times():
    """The aggregate `cpu` line of /proc/stat (proc(5)): user, nice, system,
    idle, iowait, irq, softirq, steal, ... in clock ticks."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def steal_share(before, after):
    """Share of CPU time the hypervisor gave to other guests between two
    cpu_times() (steal, the 8th field): on a starved VM every runtime is
    slower, zfs-fuse's many threads most (the Proxmox cycle's ratio rises)."""
    d = [b - a for a, b in zip(before, after)]
    total = sum(d[:8])
    return f"{100 * d[7] / total:.0f}%" if len(d) > 7 and total > 0 else "unknown"


def run(a, work, state, repo, env_dir):
    bundle = make_bundle(work, repo)
    fl = flavours(a, env_dir, state)
    with open(os.path.join(env_dir, "state", "port")) as f:
        port = f.read().strip()
    for r in fl:
        for _ in range(a.warmup):
            r.cycle(bundle, record=False)  # proxmox: the first makes the clone base
    before = cpu_times()
    for i in range(a.rounds):
        for r in fl[i % len(fl):] + fl[:i % len(fl)]:
            r.cycle(bundle)
    steal = steal_share(before, cpu_times())
    ms = lambda v: statistics.median(v) * 1000
    print(f"\nproxmox: create(stdout pipe)+start+first line+kill(KILL)+stopped+delete, {a.rounds} interleaved rounds "
          f"(+{a.warmup} warm-up), medians in ms; Proxmox backend: clone strategy, API driver, pve-double; load average {os.getloadavg()[0]:.2f}; CPU steal {steal}")
    print(f"{'runtime':<8} {'cycle':>7} " + " ".join(f"{p:>10}" for p in PHASES) + f" {'min':>7} {'max':>7}")
    for r in fl:
        x = r.res
        print(f"{r.name:<8} {ms(x['cycle']):7.1f} " + " ".join(f"{ms(x[p]):10.1f}" for p in PHASES)
              + f" {min(x['cycle'])*1000:7.1f} {max(x['cycle'])*1000:7.1f}")
    by = {r.name: r.res for r in fl}
    print(f"ratio proxmox/native: cycle {ms(by['proxmox']['cycle']) / ms(by['native']['cycle']):.2f} (target <= 3), "
          f"first line {ms(by['proxmox']['first line']) / ms(by['native']['first line']):.2f}")
    if shutil.which("strace"):
        traced_cycle(fl[0], bundle, work, port)
    else:
        print("SKIP trace: strace not installed", file=sys.stderr)
    for r in fl:
        if os.path.isdir(r.root):
            for cid in os.listdir(r.root):
                r.run(["delete", "--force", cid], check=False)
    return {r.name: r.res for r in fl}
