#!/usr/bin/env python3
"""Analyzer speed and memory, per report command, on three traces:

  big     a_pymalloc_heavy.py 1500000 under --native (about 21 million
          events), with heaptrack_print on heaptrack's trace of the same run
  stacks  tools/bench_stacks.py 400000: 400,000 distinct Python stacks 27
          frames deep (the shape of a large pytest run)
  tree    the same run's two traces at once (the stacks process and its small
          child): a process tree

Every command runs in alternating rounds (a busy machine slows all of them
alike); each line gives the median wall time, the median CPU time (user +
system, what the command itself spent: steadier on a shared host), the ratio
of its CPU time to `summary` on the same trace, and its peak memory. The
issue-15 goal: timeline, flamegraph, top and diff within 3x of summary.

  tools/bench_analyzer.py [--build build] [--records 1500000] [--stacks 400000]
                          [--rounds 5] [--timeout 600] [--only big,stacks,tree]"""
import argparse
import glob
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
# ../shared beside the clone (a worktree: one level further up)
WORKLOAD = next((p for p in (os.path.join(up, "shared", "bench", "workloads", "a_pymalloc_heavy.py")
                             for up in (os.path.dirname(ROOT), os.path.dirname(os.path.dirname(ROOT))))
                 if os.path.exists(p)), "a_pymalloc_heavy.py")
STACKS = os.path.join(ROOT, "tools", "bench_stacks.py")
PY = "/usr/bin/python3.11"


def measure(argv, env=None, timeout=None):
    """(wall s, CPU s, peak RSS MiB) of one command; None when it ran past
    the timeout (it is killed)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = t + timeout if timeout else None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if deadline and time.perf_counter() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            return None
        time.sleep(0.002)
    took = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{argv[:3]} failed: {err[-500:]}")
    return took, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def commands(hw, traces, tmp):
    """The report commands on one trace (or a process tree of several)."""
    out = os.path.join(tmp, "out")
    cmds = [("summary", ["summary", *traces]),
            ("top", ["top", *traces]),
            ("top --group-by line", ["top", "--group-by", "line", *traces]),
            ("leaks", ["leaks", *traces]),
            ("flamegraph .html", ["flamegraph", *traces, "-o", out + ".html"]),
            ("export pprof", ["export", *traces, "--format", "pprof", "-o", out + ".pb.gz"])]
    if len(traces) == 1:
        cmds += [("timeline .html", ["timeline", traces[0], "-o", out + ".html"]),
                 ("diff (itself)", ["diff", traces[0], traces[0]])]
    return [(name, [hw, *argv], None) for name, argv in cmds]


def run_rounds(tools, rounds, timeout):
    wall = {name: [] for name, _, _ in tools}
    cpu = {name: [] for name, _, _ in tools}
    rss = {name: 0.0 for name, _, _ in tools}
    gave_up = set()
    for _ in range(rounds):
        for name, argv, env in tools:
            if name in gave_up:
                continue
            m = measure(argv, env, timeout)
            if m is None:
                gave_up.add(name)
                continue
            wall[name].append(m[0])
            cpu[name].append(m[1])
            rss[name] = max(rss[name], m[2])
    return wall, cpu, rss, gave_up


def table(title, tools, result, timeout, events=None, base_rate=None):
    wall, cpu, rss, gave_up = result
    print(title)
    ref = statistics.median(cpu["summary"]) if cpu.get("summary") else None
    for name, _, _ in tools:
        if name in gave_up:
            print(f"  {name:24} > {timeout:.0f} s (stopped)")
            continue
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        line = f"  {name:24} {w:7.2f} s  CPU {c:7.2f} s"
        line += f"  {c / ref:5.2f}x summary" if ref and name != "heaptrack_print" else " " * 15
        line += f"  peak RSS {rss[name]:7.1f} MiB"
        if events:
            line += f"  {events / w / 1e6:6.2f} M events/s"
        if base_rate and name in ("summary", "top"):
            line += f"  {base_rate / w:4.2f}x heaptrack_print's rate"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--records", type=int, default=1_500_000)
    ap.add_argument("--stacks", type=int, default=400_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--only", default="big,stacks,tree")
    args = ap.parse_args()
    only = args.only.split(",")
    hw = os.path.join(args.build, "analyzer", "heapwise")
    tmp = tempfile.mkdtemp(prefix="hw-abench-")
    try:
        if "big" in only:
            big(hw, tmp, args)
        if "stacks" in only or "tree" in only:
            stacks(hw, tmp, args, only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def big(hw, tmp, args):
    env = dict(os.environ, PYTHONMALLOC="malloc")
    one = dict(os.environ, HEAPWISE_ANALYZER_THREADS="1")
    cmd = [PY, WORKLOAD, str(args.records)]
    trace = os.path.join(tmp, "a.hwt")
    subprocess.run([hw, "run", "--native", "-o", trace, "--", *cmd], env=env, check=True,
                   capture_output=True)
    s = json.loads(subprocess.run([hw, "summary", trace, "--json"], capture_output=True,
                                  text=True, check=True).stdout)
    events = s["events"]
    print(f"big: a_pymalloc_heavy {args.records} under PYTHONMALLOC=malloc, native stacks: "
          f"{events} events, trace {os.path.getsize(trace) / 2**20:.0f} MiB, "
          f"peak live heap {s['peak_bytes'] / 2**20:.1f} MiB")
    tools = commands(hw, [trace], tmp)
    tools.insert(2, ("top, 1 thread", [hw, "top", trace], one))
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
    result = run_rounds(tools, args.rounds, args.timeout)
    base = statistics.median(result[0]["heaptrack_print"]) if ht else None
    table("", tools, result, args.timeout, events, base)
    if ht:
        print(f"  (heaptrack's trace has {calls} allocation calls; its rate uses heapwise's "
              f"event count of the same workload)")
    else:
        print("  heaptrack not installed: no comparison")


def stacks(hw, tmp, args, only):
    run_dir = os.path.join(tmp, "stacks")
    os.mkdir(run_dir)
    subprocess.run([hw, "run", "-o", os.path.join(run_dir, "s.%p.hwt"), "--", PY, STACKS,
                    str(args.stacks), "--child"], check=True, capture_output=True)
    traces = sorted(glob.glob(os.path.join(run_dir, "*.hwt")), key=os.path.getsize,
                    reverse=True)
    main_trace = traces[0]
    s = json.loads(subprocess.run([hw, "summary", main_trace, "--json"], capture_output=True,
                                  text=True, check=True).stdout)
    os.sync()
    if "stacks" in only:
        print(f"\nstacks: bench_stacks.py {args.stacks}: {s['events']} events, trace "
              f"{os.path.getsize(main_trace) / 2**20:.0f} MiB")
        tools = commands(hw, [main_trace], tmp)
        table("", tools, run_rounds(tools, args.rounds, args.timeout), args.timeout)
    if "tree" in only:
        print(f"\ntree: the same run's {len(traces)} traces at once "
              f"({', '.join(f'{os.path.getsize(t) / 2**20:.1f} MiB' for t in traces)}); "
              f"'alone' is the stacks trace by itself")
        tools = commands(hw, traces, tmp)
        alone = [("summary, alone", [hw, "summary", main_trace], None),
                 ("top, alone", [hw, "top", main_trace], None)]
        table("", tools + alone, run_rounds(tools + alone, args.rounds, args.timeout),
              args.timeout)


if __name__ == "__main__":
    sys.exit(main())
