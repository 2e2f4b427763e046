"""A/B of nexcage builds on the Proxmox backend: the cycle of
benches/proxmox_cycle.py (create with stdout a pipe, start, first line,
kill KILL, state until stopped, delete) for each binary, interleaved round
by round (rotating who goes first) in one environment, so that the builds
meet the same machine. Medians in ms per phase.

usage (root; an environment of `scripts/proxmox-test-env.sh up DIR` with the
release pve-double, e.g. NEXCAGE_TEST_POOL=nxbench
PVE_DOUBLE_BIN=target/release/pve-double):

    python3 benches/proxmox_ab.py DIR ROUNDS NEXCAGE_A NEXCAGE_B [...]
"""
import os, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxmox_cycle as pc  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    env_dir, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work, state = tempfile.mkdtemp(prefix="nexcage-ab-"), tempfile.mkdtemp(prefix="nexcage-ab-state-")
    # The --root dirs on a tmpfs, as benches/lifecycle.py keeps them (a
    # real host's /run; this VM's ext4 stalls unlink/rmdir under load).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "nexcage-ab", state], check=True)
    try:
        run(env_dir, rounds, bins, work, state)
    finally:
        # A failed cycle leaves its container: keep its state for `delete`.
        if any(os.listdir(os.path.join(state, d)) for d in os.listdir(state)):
            print(f"containers left: their state stays in {state}", file=sys.stderr)
        else:
            subprocess.run(["umount", state], check=False)


def run(env_dir, rounds, bins, work, state):
    bundle = pc.make_bundle(work, REPO)
    env = dict(os.environ, PATH=f"{env_dir}/bin:{os.environ['PATH']}", NEXCAGE_CONFIG=f"{env_dir}/config-api.json")
    fl = [pc.Flavour(f"{i}-{os.path.basename(b)}", [b], os.path.join(state, f"root{i}"), env) for i, b in enumerate(bins)]
    for r in fl:
        for _ in range(2):
            r.cycle(bundle, record=False)  # the first makes the clone base
    for i in range(rounds):
        for r in fl[i % len(fl):] + fl[:i % len(fl)]:
            r.cycle(bundle)
    ms = lambda v: statistics.median(v) * 1000
    print(f"{rounds} interleaved rounds, medians in ms; load average {os.getloadavg()[0]:.2f}")
    print(f"{'binary':<24} {'cycle':>7} " + " ".join(f"{p:>10}" for p in pc.PHASES))
    for r in fl:
        print(f"{r.name:<24} {ms(r.res['cycle']):7.1f} " + " ".join(f"{ms(r.res[p]):10.1f}" for p in pc.PHASES))


if __name__ == "__main__":
    main()
