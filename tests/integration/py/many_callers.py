"""One line allocates under 80 different stacks (a recursion of every depth
from 0 to 79 reaches it), with markers around the work: a timeline grouped
by stack shows 8 of the 80 and the rest as "other", one grouped by line
shows the line."""
import ctypes
import time

mark = getattr(ctypes.CDLL(None), "hw_mark", None)
keep = []


def work():
    keep.append([bytes(1000) for _ in range(100)])  # the line


def descend(depth):
    if depth:
        return descend(depth - 1)
    return work()


if mark:
    mark(b"start")
for depth in range(80):
    descend(depth)
    time.sleep(0.002)
if mark:
    mark(b"done")
time.sleep(0.01)
keep.clear()
