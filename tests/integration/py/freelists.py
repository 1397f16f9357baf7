"""Objects CPython takes from its free lists (issue 16 item 1): on each
LINE-*-TEMP line an object is made and freed at once (its free list gets it),
on the LINE-*-KEEP line after it an object of the same type is kept, most
often the one just freed. run_reuse: a function's local list dies as the
function returns and the next call's list takes its block from the free list
with no allocation between (the block the thread allocated last); run_del:
the same with a list deleted by `del`. Live bytes per line at the end must be
tracemalloc's (HW_TRACEMALLOC_OUT: run under -X tracemalloc=1, it writes
tracemalloc's per-line statistics there); either way it ends with os._exit at
that point.
HW_TRACEMALLOC_CYCLE=1: tracemalloc is started and stopped first (3.13+: each
puts its reference tracer, or none, in place of the shim's)."""
import json
import os

if os.environ.get("HW_TRACEMALLOC_CYCLE") == "1":
    import tracemalloc
    tracemalloc.start()
    tracemalloc.stop()

N = 40_000
lists, dicts, tuples, floats = [], [], [], []


def run():
    for i in range(N):
        t = [1, 2]  # LINE-LIST-TEMP
        lists.append([])  # LINE-LIST-KEEP
        d = {"a": i}  # LINE-DICT-TEMP
        dicts.append({})  # LINE-DICT-KEEP
        u = (i, i)  # LINE-TUPLE-TEMP
        tuples.append((N, 0))  # LINE-TUPLE-KEEP
        f = i * 0.5  # LINE-FLOAT-TEMP
        floats.append(i + 0.25)  # LINE-FLOAT-KEEP
    return t, d, u, f


def temp():
    y = []  # LINE-REUSE-TEMP
    return len(y)


def maker():
    return []  # LINE-REUSE-KEEP


def run_reuse():
    for i in range(N):
        temp()
        reused.append(maker())


def run_del():
    # del: the eval loop's own decref frees the list (3.13.0 tells no
    # DESTROY for it), and the kept list takes the block the thread
    # allocated last
    for i in range(N):
        t = [i, i]  # LINE-DEL-TEMP
        del t
        deleted.append([i])  # LINE-DEL-KEEP


reused, deleted = [], []
run()
run_reuse()
run_del()
out = os.environ.get("HW_TRACEMALLOC_OUT")
if out:
    import tracemalloc
    snap = tracemalloc.take_snapshot()
    stats = [{"file": s.traceback[0].filename, "line": s.traceback[0].lineno, "size": s.size}
             for s in snap.statistics("lineno")]
    with open(out, "w") as f:
        json.dump(stats, f)
os._exit(0)
