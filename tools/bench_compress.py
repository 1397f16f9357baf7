#!/usr/bin/env python3
"""Compact traces (issue 17 part 2): bytes per event at rest, the time
compression takes against the traced run, and the analyzer on a compressed
trace against the raw one, on every workload of ../shared/bench and a
pygmentize run (Debian's python3-pygments highlighting a 2 MB Python file).

Each round: the workload traced (default mode, `heapwise run --no-compress`,
wall and CPU time), its trace(s) copied and compressed by `heapwise compress`
(wall and CPU time: on a shared host the wall times of both swing with the
load, the CPU ratio is steadier), then `heapwise summary` on the raw and on the compressed trace(s), in
alternating order, --summaries times each (wall and CPU time: user + system
of the command, steadier on a shared host; a round's ratio is of the medians
of its summaries: one summary each swung 10-20% on this 2-CPU VM). Printed:
the median of the per-round ratios, min and median of the times. With
--instructions, also the instructions of one summary of each trace (first
round, valgrind's callgrind, both threads), compressed / raw: the same on
every run, where the CPU ratio moves by 0.1 on a shared host.

Goals: at rest at most 1 byte per event; compression at most 30% of the
traced run's time; summary on the compressed trace no slower than on the raw.

  tools/bench_compress.py [--build build] [--rounds 3] [--scale 1.0]
                          [--only a,b,pygmentize] [--level 3] [--summaries 5]
                          [--instructions]"""
import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench  # noqa: E402  (the workloads and their sizes)

PY = bench.PY


def pyg_source(tmp, size=2 << 20):
    """A Python file of about SIZE bytes: the standard library's own sources."""
    path = os.path.join(tmp, "big_source.py")
    lib = os.path.dirname(os.__file__)
    with open(path, "w") as out:
        n = 0
        for f in sorted(glob.glob(os.path.join(lib, "*.py"))):
            with open(f, errors="replace") as src:
                text = src.read()
            out.write(text)
            n += len(text)
            if n >= size:
                break
    return path


def timed(argv, cwd):
    """(wall, cpu) seconds of one command (cpu: user + system of it and its
    children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({p.returncode}): {p.stderr[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summaries(hw, traces, cwd):
    wall = cpu = 0.0
    for t in traces:
        w, c = timed([hw, "summary", t], cwd)
        wall += w
        cpu += c
    return wall, cpu


def instructions(hw, traces, cwd):
    """Instructions of `heapwise summary` of each trace, summed (callgrind)."""
    total = 0
    for t in traces:
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                            hw, "summary", t], cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        got = [ln for ln in p.stderr.splitlines() if "Collected :" in ln]
        if p.returncode or not got:
            raise RuntimeError(f"callgrind of summary {t} failed: {p.stderr[-400:]}")
        total += int(got[-1].split(":")[-1])
    return total


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--level", type=int, default=None, help="zstd level (default: heapwise's)")
    ap.add_argument("--summaries", type=int, default=5,
                    help="summaries of each trace per round (alternating; their median counts)")
    ap.add_argument("--instructions", action="store_true",
                    help="also count the instructions of one summary of each trace (valgrind "
                    "--tool=callgrind, both threads; repeatable where CPU time is not)")
    args = ap.parse_args()
    hw = os.path.join(args.build, "analyzer", "heapwise")
    only = set(filter(None, args.only.split(",")))
    tmp = tempfile.mkdtemp(prefix="hw-bench-z-")
    work = {name: (b[0], b[1]) for name, b in bench.BENCHES.items()
            if b[0] is not None and name != "g-nofollow"}
    work["pygmentize"] = (lambda n: [PY, "-m", "pygments", "-l", "python", "-f", "html",
                                     "-o", os.devnull, pyg_source(tmp, n)], 2 << 20)
    level = ["--level", str(args.level)] if args.level else []
    print(f"rounds {args.rounds}, {args.summaries} summaries of each trace a round; default mode; heapwise compress{' ' + ' '.join(level) if level else ''};"
          " times: median (min)")
    print("B/ev = trace bytes per event; compress/run = compression time / traced run time\n"
          "(wall; cpu: user + system of compress / of the traced run and its children);\n"
          "summary z/raw = CPU time of heapwise summary on the compressed trace / on the raw one")
    print(f"{'workload':11} {'events':>10} {'raw B/ev':>8} {'zstd B/ev':>9} {'ratio':>6} "
          f"{'run s':>12} {'compress s':>12} {'compr/run':>9} {'cpu':>6} {'sum raw cpu':>13} "
          f"{'sum z cpu':>13} {'z/raw cpu':>9} {'z/raw wall':>10}"
          + (f" {'z/raw instr':>11}" if args.instructions else ""))
    fails = []
    try:
        for name, (build, size) in work.items():
            if only and name not in only:
                continue
            if name.startswith("f") and subprocess.run([PY, "-c", "import numpy"],
                                                       capture_output=True).returncode:
                print(f"{name:11} skipped: numpy is not installed (python3-numpy)")
                continue
            n = max(1, int(size * args.scale))
            argv = build(n)
            runs, comps, ratios, raw_cpu, z_cpu, zr_cpu, zr_wall = [], [], [], [], [], [], []
            cpu_ratios = []
            events = raw_bytes = z_bytes = 0
            for r in range(args.rounds):
                rdir = os.path.join(tmp, "raw")
                zdir = os.path.join(tmp, "z")
                for d in (rdir, zdir):
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                w, wc = timed([hw, "run", "--no-compress", "-o", os.path.join(rdir, "t.%p.hwt"),
                               "--", *argv], tmp)
                runs.append(w)
                raw = sorted(glob.glob(os.path.join(rdir, "*.hwt")))
                z = []
                for t in raw:
                    z.append(os.path.join(zdir, os.path.basename(t)))
                    shutil.copy(t, z[-1])
                cw, cc = timed([hw, "compress", *level, *z], tmp)
                comps.append(cw)
                ratios.append(cw / w)
                cpu_ratios.append(cc / wc)
                if r == 0:
                    for t in raw:
                        s = json.loads(subprocess.run([hw, "summary", t, "--json"],
                                                      capture_output=True, text=True).stdout)
                        events += s["events"]
                    raw_bytes = sum(os.path.getsize(t) for t in raw)
                    z_bytes = sum(os.path.getsize(t) for t in z)
                    if args.instructions:
                        ir = instructions(hw, z, tmp) / instructions(hw, raw, tmp)
                # --summaries pairs, alternating which goes first; the
                # round's ratio: of the medians
                rc, zc, rw, zw = [], [], [], []
                for k in range(args.summaries):
                    pair = [(raw, rc, rw), (z, zc, zw)]
                    if (r + k) % 2:
                        pair.reverse()
                    for traces, cpus, walls in pair:
                        sw, sc = summaries(hw, traces, tmp)
                        cpus.append(sc)
                        walls.append(sw)
                raw_cpu.append(med(rc))
                z_cpu.append(med(zc))
                zr_cpu.append(med(zc) / med(rc))
                zr_wall.append(med(zw) / med(rw))
            bpe_raw = raw_bytes / events if events else 0
            bpe_z = z_bytes / events if events else 0
            print(f"{name:11} {events:10d} {bpe_raw:8.2f} {bpe_z:9.2f} {raw_bytes / z_bytes:5.1f}x "
                  f"{med(runs):5.2f} ({min(runs):4.2f}) {med(comps):5.2f} ({min(comps):4.2f}) "
                  f"{med(ratios) * 100:8.1f}% {med(cpu_ratios) * 100:5.1f}% "
                  f"{med(raw_cpu):5.2f} ({min(raw_cpu):4.2f}) "
                  f"{med(z_cpu):5.2f} ({min(z_cpu):4.2f}) {med(zr_cpu):8.2f}x {med(zr_wall):9.2f}x"
                  + (f" {ir:10.3f}x" if args.instructions else ""),
                  flush=True)
            if bpe_z > 1.0:
                fails.append(f"{name}: {bpe_z:.2f} B/event at rest")
            if med(ratios) > 0.30:
                fails.append(f"{name}: compression {med(ratios) * 100:.0f}% of the run")
            if med(zr_cpu) > 1.05:
                fails.append(f"{name}: summary {med(zr_cpu):.2f}x slower compressed")
            if args.instructions and ir > 1.05:
                fails.append(f"{name}: summary {ir:.3f}x the instructions compressed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("goals: " + ("all met" if not fails else "missed: " + "; ".join(fails)))


if __name__ == "__main__":
    main()
