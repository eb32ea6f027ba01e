#!/usr/bin/env python3
"""Interleaved timing of whole commands: one run of each, in turn, N times.

On a shared machine the load changes from minute to minute; hyperfine
measures one command and then the next, so the two see different minutes.
Running them in turn makes both see the same ones, and the medians compare.

    bench/ab.py N 'CMD A' 'CMD B' [...]

Prints median, minimum and first quartile of the wall time (ms) of each.
"""
import shlex
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    commands = sys.argv[2:]
    times = [[] for _ in commands]
    for command in commands:  # one warm-up each
        subprocess.run(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(rounds):
        for i, command in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[i].append((time.perf_counter() - start) * 1000)
    for command, ts in zip(commands, times):
        ts.sort()
        print(f"median {statistics.median(ts):7.2f}  min {ts[0]:7.2f}  "
              f"p25 {ts[len(ts) // 4]:7.2f}  {command}")


if __name__ == "__main__":
    main()
