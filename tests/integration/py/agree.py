"""Memory live per line at one point, for the tracemalloc agreement test. With
HW_TRACEMALLOC_OUT set (run under -X tracemalloc=1) it writes tracemalloc's
per-line statistics there; either way it ends with os._exit at that point, so
heapwise's "live at the end of the trace" is the live set at the same point."""
import json
import os

KEEP = []


def strings():
    KEEP.append(["s%06d" % i for i in range(40_000)])  # many small str + a list


def buffers():
    KEEP.append([bytearray(10_000) for _ in range(60)])


def dicts():
    KEEP.append([{"a": i, "b": str(i)} for i in range(20_000)])


def tuples():
    KEEP.append([(i, i + 1, i + 2) for i in range(30_000)])


def floats():
    KEEP.append([float(i) * 1.5 for i in range(50_000)])


def nested():
    KEEP.append([[i] * 10 for i in range(8_000)])


def blob():
    KEEP.append(b"z" * 700_000)


def ints():
    KEEP.append(list(range(10**6, 10**6 + 60_000)))


def sets():
    KEEP.append([frozenset((i, -i)) for i in range(6_000)])


def text():
    KEEP.append(" ".join("word%d" % i for i in range(50_000)))


for fn in (strings, buffers, dicts, tuples, floats, nested, blob, ints, sets, text):
    fn()

out = os.environ.get("HW_TRACEMALLOC_OUT")
if out:
    import tracemalloc
    snap = tracemalloc.take_snapshot()
    stats = [{"file": s.traceback[0].filename, "line": s.traceback[0].lineno, "size": s.size}
             for s in snap.statistics("lineno")]
    with open(out, "w") as f:
        json.dump(stats, f)
os._exit(0)
