#!/usr/bin/env python3
"""Lifecycle benchmark: create/start/kill/delete cycles with nexcage, runc and
crun on three bundles, with two drivers, interleaved round by round, plus the
peak RSS of `<runtime> create`. Driven by benches/lifecycle.sh.

Bundles (every runtime gets the same bundle directory and its own --root):
  trimmed    bundles/busybox/config.json, process `sleep 1000`, ociVersion
             1.0.2 and no `cgroup` mount (see BENCHMARKS.md for why)
  runc-spec  exactly what `runc spec` writes (process `sh` on a terminal, so
             the driver passes --console-socket and holds the pty master)
  podman     benches/podman-run/config.json: what Podman 4.3 sent its runtime
             for `podman run -d --network none IMAGE sleep 1000` (seccomp
             profile, cgroupsPath, bind mounts), host paths made relative

Drivers:
  shim  like an engine's shim: a child subreaper that reaps the container's
        init (waitpid) after `kill ID KILL`, then `delete ID`
  cli   an admin's script: `create`, `start`, `kill ID KILL`, then `state ID`
        until it says "stopped" (the init is reaped by whoever is the
        system's reaper, not by the driver), then `delete ID`
"""
import argparse, array, ctypes, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

PR_SET_CHILD_SUBREAPER = 36
PHASES = ("create", "start", "kill+reap", "delete")
BUNDLES = ("trimmed", "runc-spec", "podman")
DRIVERS = ("shim", "cli")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LIBC = ctypes.CDLL(None, use_errno=True)

ERR = tempfile.TemporaryFile()


def sh(args, stdout=subprocess.DEVNULL):
    # stderr to a file, never a pipe: the container inherits create's stdio,
    # and reading a pipe to EOF would wait for the container to exit
    ERR.seek(0)
    ERR.truncate()
    return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=ERR)


def must(args, stdout=subprocess.DEVNULL):
    r = sh(args, stdout)
    if r.returncode != 0:
        ERR.seek(0)
        sys.exit(f"FAILED ({r.returncode}): {' '.join(args)}: {ERR.read().decode().strip()}")
    return r


def subreaper(on):
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0 and on:
        print("warning: cannot become a child subreaper; polling /proc for exits", file=sys.stderr)


def reap_orphans():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_exit(pid):
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass  # not re-parented to us (no subreaper support): poll
    while os.path.exists(f"/proc/{pid}"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if ") Z " in f.read():
                    return
        except OSError:
            return
        time.sleep(0.001)


class Console:
    """The --console-socket an engine passes for a terminal bundle: receives
    the pty master after create and keeps it open until delete."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.master = None

    def receive(self):
        conn, _ = self.sock.accept()  # the runtime connected during create
        with conn:
            fds = array.array("i")
            _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:fds.itemsize])
            self.master = fds[0] if fds else None

    def close(self):
        if self.master is not None:
            os.close(self.master)
        self.sock.close()
        os.unlink(self.path)


class Bundle:
    def __init__(self, name, path):
        self.name, self.path = name, path
        with open(os.path.join(path, "config.json")) as f:
            self.terminal = bool(json.load(f)["process"].get("terminal"))


class Runtime:
    def __init__(self, name, binary, work, state):
        self.name, self.bin = name, binary
        self.root = os.path.join(state, "root-" + name)
        self.work = work
        self.n = 0
        self.res = {}  # (bundle, driver) -> {"cycle": [...], phase: [...]}
        self.polls = 0

    def rt(self, *args):
        return [self.bin, "--root", self.root, *args]

    def create_args(self, bundle, cid):
        """The create command line, and the console to receive the pty on."""
        args = self.rt("create", "--bundle", bundle.path)
        console = None
        if bundle.terminal:
            console = Console(os.path.join(self.work, cid + ".sock"))
            args += ["--console-socket", console.path]
        return args, console

    def stopped(self, cid):
        r = must(self.rt("state", cid), stdout=subprocess.PIPE)
        return json.loads(r.stdout)["status"] == "stopped"

    def cycle(self, bundle, driver, record=True):
        self.n += 1
        cid = f"bench-{self.name}-{os.getpid()}-{self.n}"
        pidfile = os.path.join(self.work, cid + ".pid")
        args, console = self.create_args(bundle, cid)
        subreaper(driver == "shim")
        t0 = time.perf_counter()
        must(args + ["--pid-file", pidfile, cid])
        if console:
            console.receive()
        t1 = time.perf_counter()
        must(self.rt("start", cid))
        t2 = time.perf_counter()
        must(self.rt("kill", cid, "KILL"))
        if driver == "shim":
            with open(pidfile) as f:
                wait_exit(int(f.read().strip()))
        else:
            deadline = time.monotonic() + 10
            while not self.stopped(cid):
                self.polls += 1
                if time.monotonic() > deadline:
                    sys.exit(f"FAILED: {self.name} {cid} not stopped 10 s after kill")
        t3 = time.perf_counter()
        must(self.rt("delete", cid))
        t4 = time.perf_counter()
        if console:
            console.close()
        os.unlink(pidfile)
        reap_orphans()
        if record:
            r = self.res.setdefault((bundle.name, driver), {k: [] for k in ("cycle",) + PHASES})
            r["cycle"].append(t4 - t0)
            for k, v in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                r[k].append(v)

    def peak_rss_kib(self, bundle):
        cid = f"rss-{self.name}-{os.getpid()}-{self.n}"
        self.n += 1
        out = os.path.join(self.work, cid + ".rss")
        args, console = self.create_args(bundle, cid)
        subreaper(True)
        must(["/usr/bin/time", "-f", "%M", "-o", out] + args + [cid])
        if console:
            console.receive()
        with open(out) as f:
            val = int(f.read().split()[-1])
        must(self.rt("delete", "--force", cid))
        if console:
            console.close()
        os.unlink(out)
        reap_orphans()
        return val


def make_bundles(work, names):
    """Builds each bundle directory with its own busybox rootfs."""
    made = []
    for name in names:
        path = os.path.join(work, "bundle-" + name)
        os.makedirs(path)
        subprocess.run(["sh", os.path.join(REPO, "bundles/make-rootfs.sh"), os.path.join(path, "rootfs")],
                       check=True, stdout=subprocess.DEVNULL)
        if name == "trimmed":
            with open(os.path.join(REPO, "bundles/busybox/config.json")) as f:
                spec = json.load(f)
            spec["root"]["path"] = "rootfs"
            spec["process"]["args"] = ["sleep", "1000"]
            spec["process"]["terminal"] = False
            # crun 1.8 rejects ociVersion 1.2.0; runc 1.1.5 cannot mount the
            # cgroup fs in a cgroup namespace while /run/cg-hugetlb (crun's
            # hybrid fix) is mounted. Same bundle for all.
            spec["ociVersion"] = "1.0.2"
            spec["mounts"] = [m for m in spec["mounts"] if m.get("type") != "cgroup"]
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(spec, f)
        elif name == "runc-spec":
            subprocess.run(["runc", "spec", "--bundle", path], check=True)
        elif name == "podman":
            shutil.copy(os.path.join(HERE, "podman-run/config.json"), path)
            # What Podman's runroot holds for the container (its shm is a tmpfs there).
            ud = os.path.join(path, "userdata")
            os.makedirs(os.path.join(ud, "shm"))
            for f, text in (("hosts", "127.0.0.1 localhost\n"), ("hostname", "bench\n"), (".containerenv", "engine=\"podman-4.3.1\"\n")):
                with open(os.path.join(ud, f), "w") as fh:
                    fh.write(text)
        made.append(Bundle(name, path))
    return made


def report(rts, bundles, drivers, a, rss):
    ms = lambda v: statistics.median(v) * 1000
    print(f"lifecycle: create+start+kill(KILL)+reap+delete, {a.rounds} interleaved rounds "
          f"(+{a.warmup} warm-up), state on {'disk' if a.state_on_disk else 'tmpfs'}, medians in ms; load average before/after: {a.load_before} / {os.getloadavg()[0]:.2f}")
    by = {r.name: r for r in rts}
    for b in bundles:
        for d in drivers:
            print(f"\n[{b.name} bundle, {d} driver]")
            print(f"{'runtime':<8} {'cycle':>7} " + " ".join(f"{p:>9}" for p in PHASES) + f" {'min':>7} {'max':>7}")
            for r in rts:
                x = r.res[(b.name, d)]
                print(f"{r.name:<8} {ms(x['cycle']):7.1f} " + " ".join(f"{ms(x[p]):9.1f}" for p in PHASES)
                      + f" {min(x['cycle'])*1000:7.1f} {max(x['cycle'])*1000:7.1f}")
            nx = by["nexcage"].res[(b.name, d)]
            for other in ("runc", "crun"):
                if other in by:
                    o = by[other].res[(b.name, d)]
                    print(f"ratio nexcage/{other}: cycle {ms(nx['cycle']) / ms(o['cycle']):.2f}, "
                          + ", ".join(f"{p} {ms(nx[p]) / ms(o[p]):.2f}" for p in PHASES))
    print(f"\npeak RSS of `<runtime> create` (KiB, /usr/bin/time -f %M, median of {a.rss_samples}):")
    for b in bundles:
        line = ", ".join(f"{n} {statistics.median(v):.0f}" for n, v in rss[b.name].items())
        if "runc" in rss[b.name]:
            line += f"; nexcage/runc {statistics.median(rss[b.name]['nexcage']) / statistics.median(rss[b.name]['runc']):.2f}"
        print(f"  {b.name}: {line}")
    if "cli" in drivers:
        print("state polls after kill (cli driver, beyond the first): " + ", ".join(f"{r.name} {r.polls}" for r in rts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rss-samples", type=int, default=5)
    ap.add_argument("--bundles", default=",".join(BUNDLES), help="comma-separated subset of " + ",".join(BUNDLES))
    ap.add_argument("--drivers", default=",".join(DRIVERS), help="comma-separated subset of " + ",".join(DRIVERS))
    ap.add_argument("--nexcage", required=True)
    ap.add_argument("--runc", default=shutil.which("runc"))
    ap.add_argument("--crun", default=shutil.which("crun"))
    ap.add_argument("--state-on-disk", action="store_true",
                    help="keep the --root dirs in the temp dir instead of a tmpfs (where /run is on a real host)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--proxmox", metavar="DIR",
                    help="only the Proxmox comparison (benches/proxmox_cycle.py) on the environment of "
                         "`scripts/proxmox-test-env.sh up DIR`")
    a = ap.parse_args()
    a.load_before = f"{os.getloadavg()[0]:.2f}"
    drivers = [d for d in a.drivers.split(",") if d]
    if any(d not in DRIVERS for d in drivers) or any(b not in BUNDLES for b in a.bundles.split(",")):
        sys.exit(f"--bundles from {BUNDLES}, --drivers from {DRIVERS}")

    work = tempfile.mkdtemp(prefix="nexcage-bench-")
    # The runtimes' default roots (/run/runc, /run/crun, /run/nexcage) are on
    # a tmpfs on a real host; this VM's /run is on the ext4 root, whose
    # journal commits stall unlink/rmdir for up to ~80 ms under load.
    state = os.path.join(work, "state")
    os.makedirs(state)
    tmpfs = not a.state_on_disk
    if tmpfs:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "nexcage-bench", state], check=True)
    rts = []
    try:
        if a.proxmox:
            sys.path.insert(0, HERE)
            import proxmox_cycle
            res = proxmox_cycle.run(a, work, state, REPO, a.proxmox)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(res, f, indent=1)
            return
        bundles = make_bundles(work, [b for b in a.bundles.split(",") if b])
        rts.append(Runtime("nexcage", os.path.abspath(a.nexcage), work, state))
        for name, path in (("runc", a.runc), ("crun", a.crun)):
            if path:
                rts.append(Runtime(name, path, work, state))
            else:
                print(f"SKIP {name}: not installed", file=sys.stderr)

        for r in rts:
            for b in bundles:
                for d in drivers:
                    for _ in range(a.warmup):
                        r.cycle(b, d, record=False)
        for i in range(a.rounds):
            order = rts[i % len(rts):] + rts[:i % len(rts)]  # rotate who goes first
            for b in bundles:
                for d in drivers:
                    for r in order:
                        r.cycle(b, d)

        rss = {b.name: {} for b in bundles}
        for _ in range(a.rss_samples):
            for b in bundles:
                for r in rts:
                    rss[b.name].setdefault(r.name, []).append(r.peak_rss_kib(b))

        report(rts, bundles, drivers, a, rss)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({r.name: {f"{b}/{d}": v for (b, d), v in r.res.items()} | {"rss_kib": {b: v.get(r.name) for b, v in rss.items()}}
                           for r in rts}, f, indent=1)
    finally:
        subreaper(True)
        for r in rts:
            if os.path.isdir(r.root):
                for cid in os.listdir(r.root):
                    sh(r.rt("delete", "--force", cid))
        reap_orphans()
        if tmpfs:
            subprocess.run(["umount", state])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
