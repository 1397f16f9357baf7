"""A request handler that leaks into a module-level list, or not with --fixed
(integration test for `heapwise check`). Marks each phase with hw_mark when
running under heapwise."""
import ctypes
import sys

CACHE = []
_hw = getattr(ctypes.CDLL(None), "hw_mark", None)


def mark(label):
    if _hw:
        _hw(label.encode())


def handle(i, fixed):
    scratch = bytearray(20_000)  # freed when handle returns
    if not fixed:
        CACHE.append(bytearray(10_000))  # LINE-LEAK
    return len(scratch) + i


def main():
    fixed = "--fixed" in sys.argv
    mark("requests-start")
    total = sum(handle(i, fixed) for i in range(100))
    mark("requests-end")
    print("served", total, len(CACHE))


main()
