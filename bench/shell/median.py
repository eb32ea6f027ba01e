#!/usr/bin/env python3
"""Print the median and mean wall time of each command in a hyperfine JSON
export, and its mean CPU time (user + system), which a busy machine
disturbs much less than the wall time."""
import json
import statistics
import sys

for result in json.load(open(sys.argv[1]))["results"]:
    times = result["times"]
    print(
        f"{statistics.median(times) * 1000:7.1f} ms median  "
        f"{result['mean'] * 1000:7.1f} ms mean  "
        f"{(result['user'] + result['system']) * 1000:5.1f} ms cpu  {result['command']}"
    )
