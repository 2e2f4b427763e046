#!/usr/bin/env python3
"""Lifecycle benchmark: create/start/kill/delete cycles of the example bundle
(process: `sleep 1000`) with nexcage, runc and crun, interleaved round by round,
plus peak RSS of `<runtime> create`. Driven by benches/lifecycle.sh.

The driver acts like an engine's shim: it is a child subreaper, so the
container's init is re-parented to it, and after `kill ID KILL` it reaps the
init (waitpid) before `delete ID`. Every runtime gets the same bundle, its own
--root, and the same steps.
"""
import argparse, ctypes, json, os, shutil, statistics, subprocess, sys, tempfile, time

PR_SET_CHILD_SUBREAPER = 36


ERR = tempfile.TemporaryFile()


def sh(args):
    # stderr to a file, never a pipe: the container inherits create's stdio,
    # and reading a pipe to EOF would wait for the container to exit
    ERR.seek(0)
    ERR.truncate()
    return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ERR)


def must(args):
    r = sh(args)
    if r.returncode != 0:
        ERR.seek(0)
        sys.exit(f"FAILED ({r.returncode}): {' '.join(args)}: {ERR.read().decode().strip()}")


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


class Runtime:
    def __init__(self, name, binary, work):
        self.name, self.bin = name, binary
        self.root = os.path.join(work, "root-" + name)
        self.n = 0
        self.cycles, self.phases = [], {p: [] for p in ("create", "start", "kill+reap", "delete")}

    def rt(self, *args):
        return [self.bin, "--root", self.root, *args]

    def cycle(self, bundle, work, record=True):
        self.n += 1
        cid = f"bench-{self.name}-{os.getpid()}-{self.n}"
        pidfile = os.path.join(work, cid + ".pid")
        t0 = time.perf_counter()
        must(self.rt("create", "--bundle", bundle, "--pid-file", pidfile, cid))
        t1 = time.perf_counter()
        with open(pidfile) as f:
            pid = int(f.read().strip())
        must(self.rt("start", cid))
        t2 = time.perf_counter()
        must(self.rt("kill", cid, "KILL"))
        wait_exit(pid)
        t3 = time.perf_counter()
        must(self.rt("delete", cid))
        t4 = time.perf_counter()
        os.unlink(pidfile)
        reap_orphans()
        if record:
            self.cycles.append(t4 - t0)
            for k, v in zip(self.phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                self.phases[k].append(v)

    def peak_rss_kib(self, bundle, work, n):
        vals = []
        for i in range(n):
            cid = f"rss-{self.name}-{os.getpid()}-{i}"
            out = os.path.join(work, cid + ".rss")
            must(["/usr/bin/time", "-f", "%M", "-o", out] + self.rt("create", "--bundle", bundle, cid))
            with open(out) as f:
                vals.append(int(f.read().split()[-1]))
            must(self.rt("delete", "--force", cid))
            reap_orphans()
        return vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rss-samples", type=int, default=5)
    ap.add_argument("--nexcage", required=True)
    ap.add_argument("--runc", default=shutil.which("runc"))
    ap.add_argument("--crun", default=shutil.which("crun"))
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args()

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: cannot become a child subreaper; polling /proc for exits", file=sys.stderr)

    work = tempfile.mkdtemp(prefix="nexcage-bench-")
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        repo = os.path.dirname(here)
        rootfs = os.path.join(work, "rootfs")
        subprocess.run(["sh", os.path.join(repo, "bundles/make-rootfs.sh"), rootfs], check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(repo, "bundles/busybox/config.json")) as f:
            spec = json.load(f)
        spec["root"]["path"] = rootfs
        spec["process"]["args"] = ["sleep", "1000"]
        spec["process"]["terminal"] = False
        # crun 1.8 rejects ociVersion 1.2.0; runc 1.1.5 cannot mount the cgroup
        # fs while /run/cg-hugetlb (crun's hybrid fix) is mounted. Same bundle for all.
        spec["ociVersion"] = "1.0.2"
        spec["mounts"] = [m for m in spec["mounts"] if m.get("type") != "cgroup"]
        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)

        rts = [Runtime("nexcage", os.path.abspath(a.nexcage), work)]
        for name, path in (("runc", a.runc), ("crun", a.crun)):
            if path:
                rts.append(Runtime(name, path, work))
            else:
                print(f"SKIP {name}: not installed", file=sys.stderr)

        for r in rts:
            for _ in range(a.warmup):
                r.cycle(bundle, work, record=False)
        for i in range(a.rounds):
            order = rts[i % len(rts):] + rts[:i % len(rts)]  # rotate who goes first
            for r in order:
                r.cycle(bundle, work)

        rss = {}
        for i in range(a.rss_samples):
            for r in rts:
                rss.setdefault(r.name, []).extend(r.peak_rss_kib(bundle, work, 1))

        ms = lambda v: statistics.median(v) * 1000
        print(f"lifecycle: create+start+kill(KILL)+reap+delete, {a.rounds} interleaved rounds "
              f"(+{a.warmup} warm-up), medians in ms")
        print(f"{'runtime':<8} {'cycle':>8} " + " ".join(f"{p:>10}" for p in rts[0].phases) + f" {'min':>7} {'max':>7}")
        for r in rts:
            print(f"{r.name:<8} {ms(r.cycles):8.1f} " + " ".join(f"{ms(v):10.1f}" for v in r.phases.values())
                  + f" {min(r.cycles)*1000:7.1f} {max(r.cycles)*1000:7.1f}")
        by = {r.name: r for r in rts}
        nx = ms(by["nexcage"].cycles)
        for other in ("runc", "crun"):
            if other in by:
                print(f"ratio nexcage/{other}: {nx / ms(by[other].cycles):.2f}")
        print(f"peak RSS of `<runtime> create` (KiB, /usr/bin/time -f %M, {a.rss_samples} samples): "
              + ", ".join(f"{n} median {statistics.median(v):.0f} max {max(v)}" for n, v in rss.items()))
        if "runc" in rss:
            print(f"RSS ratio nexcage/runc: {statistics.median(rss['nexcage']) / statistics.median(rss['runc']):.2f}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({r.name: {"cycles_s": r.cycles, "phases_s": r.phases, "rss_kib": rss.get(r.name)}
                           for r in rts}, f, indent=1)
    finally:
        for r in locals().get("rts", []):
            if os.path.isdir(r.root):
                for cid in os.listdir(r.root):
                    sh(r.rt("delete", "--force", cid))
        reap_orphans()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
