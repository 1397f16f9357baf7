"""Native threads started from Python (issue 16 item 4): a C library's
workers (argv[1], progs/workers.c, through ctypes) leak 4 x 1,000,000 bytes
when started from one line and 2 x 3,000,000 from another; a Python thread
started on a third line leaks 500,000."""
import ctypes
import sys
import threading

lib = ctypes.CDLL(sys.argv[1])
lib.workers_run.argtypes = [ctypes.c_int, ctypes.c_size_t]
KEEP = []


def pool():
    return lib.workers_run(2, 3_000_000)  # LINE-START-B


def python_worker():
    KEEP.append(bytearray(500_000))


assert lib.workers_run(4, 1_000_000) == 4  # LINE-START-A
assert pool() == 2
t = threading.Thread(target=python_worker)
t.start()  # LINE-START-PY
t.join()
