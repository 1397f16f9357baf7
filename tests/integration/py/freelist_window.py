"""A window between two markers sees the objects a free list gives back
(issue 16 item 1): 2,000 tuples are made on LINE-TUPLE and freed (their free
list keeps them), then made again on the same line by the same stack after
the marker 'window' and kept to the marker 'end' (i is made by range, on
another line). From 3.13 on the second ones are the first ones' memory,
given back by a RETAG: one left out because the block's stack did not change
must still not cross the marker. No automatic collection (its marks would
separate the two phases anyway)."""
import ctypes
import gc

gc.disable()

mark = getattr(ctypes.CDLL(None), "hw_mark", None)


def make(i):
    return (i, None, "x")  # LINE-TUPLE


def fill(keep):
    got = [make(i) for i in range(2_000)]
    return got if keep else None


def main():
    if mark:
        mark(b"start")  # ctypes' first call loads what it needs before the phases
    kept = None
    for step in range(2):  # the same stack both times
        if step == 1 and mark:
            mark(b"window")
        kept = fill(step == 1)
    if mark:
        mark(b"end")
    print("window", len(kept))


main()
