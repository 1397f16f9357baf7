#!/usr/bin/env python3
"""Thread churn benchmark: N threads, one after the other, each making one
allocation (tests/integration/progs/tchurn.c), and N Python threads each
making a list; untraced and under heapwise (default mode and --native), in
alternating rounds. Prints each traced run's time ratio to the untraced one
(min and median of the per-round ratios) and its trace size.

  tools/bench_churn.py [--build build] [--rounds 5] [--threads 20000] [--py-threads 5000]"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3.11"
PY_CHURN = """
import sys, threading
def work(): return [0] * 100
for _ in range(int(sys.argv[1])):
    t = threading.Thread(target=work); t.start(); t.join()
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=20000)
    ap.add_argument("--py-threads", type=int, default=5000)
    args = ap.parse_args()
    hw = os.path.join(args.build, "analyzer", "heapwise")
    tmp = tempfile.mkdtemp(prefix="hw-churn-")
    try:
        cases = {
            f"C, {args.threads} threads": [os.path.join(args.build, "tests", "tchurn"),
                                           str(args.threads)],
            f"Python, {args.py_threads} threads": [PY, "-c", PY_CHURN, str(args.py_threads)],
        }
        print(f"rounds {args.rounds}; ratio = traced / untraced time (min, median); trace size")
        for name, argv in cases.items():
            modes = {"untraced": argv,
                     "default": [hw, "run", "-o", os.path.join(tmp, "d.%p.hwt"), "--", *argv],
                     "--native": [hw, "run", "--native", "-o", os.path.join(tmp, "n.%p.hwt"),
                                  "--", *argv]}
            times = {m: [] for m in modes}
            sizes = {}
            for _ in range(args.rounds):
                for m, cmd in modes.items():
                    t = time.perf_counter()
                    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, cwd=tmp)
                    times[m].append(time.perf_counter() - t)
                    for f in os.listdir(tmp):
                        sizes[m] = os.path.getsize(os.path.join(tmp, f))
                        os.unlink(os.path.join(tmp, f))
            base = times["untraced"]
            print(f"{name}: untraced median {statistics.median(base):.2f} s")
            for m in ("default", "--native"):
                r = [t / b for t, b in zip(times[m], base)]
                print(f"  {m:9} {min(r):6.2f}x {statistics.median(r):6.2f}x "
                      f"{sizes[m] / 1e6:9.1f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
