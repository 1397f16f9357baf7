#!/usr/bin/env python3
"""Analyzer throughput: events per second of `heapwise summary` and `heapwise
top` on a trace of at least 20 million events, beside heaptrack_print on
heaptrack's trace of the same workload, with each tool's peak memory. The
tools run in alternating rounds (the median of each is printed), so a busy
machine slows all of them alike.

  tools/bench_analyzer.py [--build build] [--records 1500000] [--rounds 5]"""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(ROOT, "..", "shared", "bench", "workloads", "a_pymalloc_heavy.py")


def measure(argv, env=None):
    """(seconds, peak RSS in MiB) of one command."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, text=True,
                       env=env)
    took = time.perf_counter() - t
    if p.returncode:
        raise RuntimeError(f"{argv[:3]} failed: {p.stderr[-500:]}")
    return took, int(p.stderr.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--records", type=int, default=1_500_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    hw = os.path.join(args.build, "analyzer", "heapwise")
    tmp = tempfile.mkdtemp(prefix="hw-abench-")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    one = dict(os.environ, HEAPWISE_ANALYZER_THREADS="1")
    cmd = ["/usr/bin/python3.11", WORKLOAD, str(args.records)]
    try:
        trace = os.path.join(tmp, "a.hwt")
        subprocess.run([hw, "run", "--native", "-o", trace, "--", *cmd], env=env, check=True,
                       capture_output=True)
        s = json.loads(subprocess.run([hw, "summary", trace, "--json"], capture_output=True,
                                      text=True, check=True).stdout)
        events = s["events"]
        print(f"workload: a_pymalloc_heavy {args.records} under PYTHONMALLOC=malloc, "
              f"native stacks: {events} events, trace {os.path.getsize(trace) / 2**20:.0f} MiB, "
              f"peak live heap {s['peak_bytes'] / 2**20:.1f} MiB")
        tools = [("heapwise summary", [hw, "summary", trace], None),
                 ("heapwise top", [hw, "top", trace], None),
                 ("heapwise top, 1 thread", [hw, "top", trace], one)]
        ht = shutil.which("heaptrack")
        calls = 0
        if ht:
            subprocess.run([ht, "-o", os.path.join(tmp, "ht"), *cmd], env=env, check=True,
                           capture_output=True)
            htfile = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith("ht"))
            out = subprocess.run(["heaptrack_print", htfile], capture_output=True,
                                 text=True).stdout
            m = re.search(r"calls to allocation functions: (\d+)", out)
            calls = int(m.group(1)) if m else 0
            tools.append(("heaptrack_print", ["heaptrack_print", htfile], None))
        # the traces were just written: their pages go to disk some 30 s
        # later, in the middle of the rounds, unless that happens now
        os.sync()
        times = {name: [] for name, _, _ in tools}
        rss = {name: 0.0 for name, _, _ in tools}
        for _ in range(args.rounds):
            for name, argv, e in tools:
                took, peak = measure(argv, e)
                times[name].append(took)
                rss[name] = max(rss[name], peak)
        base = statistics.median(times["heaptrack_print"]) if ht else None
        for name, _, _ in tools:
            took = statistics.median(times[name])
            line = (f"{name:24} {took:7.2f} s  {events / took / 1e6:6.2f} M events/s  "
                    f"peak RSS {rss[name]:7.1f} MiB")
            if base and name != "heaptrack_print":
                line += f"  {base / took:4.2f}x heaptrack_print's rate"
            print(line)
        if ht:
            print(f"(heaptrack's trace has {calls} allocation calls; its rate uses heapwise's "
                  f"event count of the same workload)")
        else:
            print("heaptrack not installed: no comparison")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
