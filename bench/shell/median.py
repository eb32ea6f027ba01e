#!/usr/bin/env python3
"""Print the median and mean of each command in a hyperfine JSON export."""
import json
import statistics
import sys

for result in json.load(open(sys.argv[1]))["results"]:
    times = result["times"]
    print(
        f"{statistics.median(times) * 1000:7.1f} ms median  "
        f"{result['mean'] * 1000:7.1f} ms mean  {result['command']}"
    )
