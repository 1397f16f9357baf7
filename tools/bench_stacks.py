#!/usr/bin/env python3
"""A workload with many distinct stacks, the shape of a large test suite run
under pytest: K leaf functions called from K callers below a recursion DEPTH
frames deep, so K*K distinct Python stacks (K = sqrt(N)), each allocating a
few small lists; half of what is kept is dropped now and then. With --child
it also runs a small Python child process at the end (a process tree of two).

  python3 tools/bench_stacks.py [N] [--child]"""
import subprocess
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 400_000
DEPTH = 24
K = int(N ** 0.5) + 1

src = []
for i in range(K):
    src.append(f"def leaf_{i}(x):\n    return [x] * {1 + i % 7}\n")
for j in range(K):
    src.append(f"def caller_{j}(leaves, keep):\n"
               f"    for f in leaves:\n"
               f"        keep.append(f({j}))\n")
ns = {}
exec(compile("".join(src), "generated_suite.py", "exec"), ns)
leaves = [ns[f"leaf_{i}"] for i in range(K)]


def descend(depth, fn, *args):
    if depth:
        return descend(depth - 1, fn, *args)
    return fn(*args)


keep = []
for j in range(K):
    descend(DEPTH, ns[f"caller_{j}"], leaves, keep)
    if j % 16 == 15:
        del keep[: len(keep) // 2]

if "--child" in sys.argv:
    subprocess.run([sys.executable, "-c",
                    "x = [bytes(100) for _ in range(20000)]; del x"], check=True)
