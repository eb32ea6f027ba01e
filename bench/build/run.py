#!/usr/bin/env python3
"""kiln build vs Nix 2.8 sandboxed builds of the same trivial graphs.

Graphs (see builder/examples/bench_graph.rs and bench/build/graph.nix):
each node runs a static busybox `sh -c 'echo $name > $out'` in a sandbox.
  chain N  node i depends on node i-1           (built with -j1)
  refchain N  the same, each output refers to the previous one, so build i
           has i inputs in its closure                (built with -j1)
  dag 200  ten wide, node i needs i-10 and i-11 (built with -j2)

For each graph and repetition, on fresh throwaway stores:
  kiln: write the .drv files (bench_graph, not timed), then time
        `kiln build --no-out-link -j J TARGETS`, then a no-op rebuild.
  nix:  `nix-instantiate` (not timed), then time `nix-store --realise`
        with sandbox = true on a chroot store (--store DIR).
Per-build phases come from kiln's `kiln_builder::timing` debug lines.

Usage: bench/build/run.py [--reps R] [--chains 100,300] [--out DIR]
Prints a summary and writes raw numbers to DIR/results.json.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KILN = os.path.join(REPO, "target/release/kiln")
GEN = os.path.join(REPO, "target/release/examples/bench_graph")
GRAPH_NIX = os.path.join(REPO, "bench/build/graph.nix")
TIMING = re.compile(
    r"built \S+ in ([\d.]+)(µs|ms|s): setup ([\d.]+)(µs|ms|s), "
    r"sandbox\+builder ([\d.]+)(µs|ms|s), outputs ([\d.]+)(µs|ms|s), "
    r"register ([\d.]+)(µs|ms|s)"
)
UNIT = {"µs": 1e-3, "ms": 1.0, "s": 1e3}


def ms(value, unit):
    return float(value) * UNIT[unit]


def run_kiln(work, bb, shape, n, jobs, rep):
    root = os.path.join(work, f"kiln-{shape}{n}-{rep}")
    targets = subprocess.run(
        [GEN, root, "/kiln/store", bb, shape, str(n)],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    env = dict(os.environ, KILN_LOG="kiln_builder::timing=debug")
    cmd = [KILN, "--root", root, "build", "--no-out-link", "-j", str(jobs), *targets]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"kiln build failed:\n{out.stderr[-3000:]}")
    phases = []
    for line in out.stderr.splitlines():
        m = TIMING.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m:
            g = m.groups()
            phases.append({
                "total": ms(g[0], g[1]), "setup": ms(g[2], g[3]),
                "sandbox": ms(g[4], g[5]), "outputs": ms(g[6], g[7]),
                "register": ms(g[8], g[9]),
            })
    if len(phases) != n:
        sys.exit(f"expected {n} timing lines, got {len(phases)}")
    start = time.perf_counter()
    subprocess.run([KILN, "--root", root, "build", "--no-out-link", *targets],
                   check=True, capture_output=True)
    noop = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    return {"wall": wall, "noop": noop, "phases": phases}


def run_nix(work, bb, shape, n, jobs, rep):
    store = os.path.join(work, f"nix-{shape}{n}-{rep}")
    env = dict(os.environ, NIX_REMOTE="")
    opts = ["--option", "sandbox", "true", "--option", "build-users-group", "",
            "--option", "substituters", ""]
    drvs = subprocess.run(
        ["nix-instantiate", "--store", store, *opts, GRAPH_NIX,
         "--arg", "shape", f'"{shape}"', "--arg", "n", str(n), "--arg", "bbDir", bb],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()
    start = time.perf_counter()
    subprocess.run(["nix-store", "--store", store, *opts, "-j", str(jobs),
                    "--realise", *drvs],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    subprocess.run(["chmod", "-R", "u+w", store], capture_output=True)
    shutil.rmtree(store, ignore_errors=True)
    return {"wall": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chains", default="100,300")
    ap.add_argument("--refchains", default="200",
                    help="chains whose outputs refer to each other (closure grows)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "kiln", "-p", "kiln-builder",
                    "--example", "bench_graph"], cwd=REPO, check=True)
    have_nix = shutil.which("nix-store") is not None
    work = tempfile.mkdtemp(prefix="kiln-bench-build-")
    bb = os.path.join(work, "bb")
    os.makedirs(os.path.join(bb, "bin"))
    shutil.copy("/bin/busybox", os.path.join(bb, "bin/busybox"))

    graphs = ([("chain", int(c), 1) for c in args.chains.split(",") if c]
              + [("refchain", int(c), 1) for c in args.refchains.split(",") if c]
              + [("dag", 200, 2)])
    results = {}
    for shape, n, jobs in graphs:
        key = f"{shape}{n}-j{jobs}"
        results[key] = {"kiln": [], "nix": []}
        for rep in range(args.reps):
            # Interleave the two so that load changes hit both alike.
            results[key]["kiln"].append(run_kiln(work, bb, shape, n, jobs, rep))
            if have_nix:
                results[key]["nix"].append(run_nix(work, bb, shape, n, jobs, rep))

    print(f"{'graph':<14}{'kiln s':>9}{'nix s':>9}{'ratio':>7}{'kiln ms/build':>15}"
          f"{'nix ms/build':>14}{'no-op ms':>10}")
    for key, r in results.items():
        n = len(r["kiln"][0]["phases"])
        kw = statistics.median(x["wall"] for x in r["kiln"])
        noop = statistics.median(x["noop"] for x in r["kiln"]) * 1e3
        nw = statistics.median(x["wall"] for x in r["nix"]) if r["nix"] else float("nan")
        print(f"{key:<14}{kw:>9.2f}{nw:>9.2f}{kw / nw:>7.2f}{kw / n * 1e3:>15.1f}"
              f"{nw / n * 1e3:>14.1f}{noop:>10.1f}")
    print("\nper-build phases, median ms over all builds (kiln):")
    print(f"{'graph':<14}{'total':>8}{'setup':>8}{'sandbox+builder':>17}{'outputs':>9}"
          f"{'register':>10}{'overhead*':>11}")
    for key, r in results.items():
        ph = [p for x in r["kiln"] for p in x["phases"]]
        med = {k: statistics.median(p[k] for p in ph) for k in ph[0]}
        over = statistics.median(p["setup"] + p["outputs"] + p["register"] for p in ph)
        print(f"{key:<14}{med['total']:>8.2f}{med['setup']:>8.2f}{med['sandbox']:>17.2f}"
              f"{med['outputs']:>9.2f}{med['register']:>10.2f}{over:>11.2f}")
    print("* overhead = setup + outputs (canonicalise, scan, NAR hash) + register "
          "(fsync, rename, DB commit); sandbox+builder is bwrap and the builder.")
    for key, r in results.items():
        if not key.startswith("refchain"):
            continue
        n = len(r["kiln"][0]["phases"])
        # Build i of a refchain has i inputs: compare early and late builds.
        def around(i):
            window = [x["phases"][j]["total"] for x in r["kiln"]
                      for j in range(max(0, i - 5), min(n, i + 5))]
            return statistics.median(window)
        lo, hi = min(20, n - 1), n - 1
        print(f"\n{key}: kiln per build at ~{lo} inputs {around(lo):.2f} ms, "
              f"at ~{hi} inputs {around(hi):.2f} ms (ratio {around(hi) / around(lo):.2f})")
    out_dir = args.out or work
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nraw results: {os.path.join(out_dir, 'results.json')}")
    if args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
