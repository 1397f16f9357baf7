"""Deep Python stacks (test_python.DeepStacks). `copy LEVELS`: copy.deepcopy
of a nest LEVELS deep (two frames of copy.py a level: 150 levels make a stack
of ~300 frames, 450 of ~900) allocates everything under one line of ours;
with HW_TRACEMALLOC_OUT set (run under -X tracemalloc=1000) it writes the
bytes tracemalloc has live under that line and the deepest traceback.
`recurse DEPTH`: our own function DEPTH calls deep, past the recursion
limit's default. Either way it ends normally (KEEP is live when
finalization starts; HEAPWISE_STACK_CACHE=check reports at exit)."""
import copy
import json
import os
import sys


def nest(levels):
    x = [bytearray(50_000)]
    for _ in range(levels):
        x = [x, bytearray(10_000)]
    return x


def recurse(n):
    if n:
        return recurse(n - 1)
    return bytearray(2_000_000)  # LINE-BOTTOM


mode, depth = sys.argv[1], int(sys.argv[2])
if mode == "copy":
    SRC = nest(depth)
    KEEP = copy.deepcopy(SRC)  # LINE-COPY
    line = sys._getframe().f_lineno - 1
else:
    sys.setrecursionlimit(depth + 1000)
    KEEP = recurse(depth)  # LINE-CALL
    line = sys._getframe().f_lineno - 1
out = os.environ.get("HW_TRACEMALLOC_OUT")
if out:
    import tracemalloc
    snap = tracemalloc.take_snapshot()
    me = os.path.abspath(__file__)
    under = sum(t.size for t in snap.traces
                if any(f.filename == me and f.lineno == line for f in t.traceback))
    deepest = max(len(t.traceback) for t in snap.traces)
    with open(out, "w") as f:
        json.dump({"line": line, "bytes": under, "deepest": deepest}, f)
