"""Windows for heapwise follow against check --between: allocations freed
inside, leaks, a leak by another thread, a fork whose child allocates."""
import ctypes
import gc
import os
import threading

mark = ctypes.CDLL(None).hw_mark
keep = []


def leak(n):
    keep.append(bytearray(n))


for i in range(6):
    gc.collect()
    mark(f"w{i}-start".encode())
    x = [bytearray(100_000 * (i + 1)) for _ in range(10)]
    del x
    if i % 2:
        leak(50_000 * (i + 1))
    if i == 3:
        t = threading.Thread(target=leak, args=(300_000,))
        t.start()
        t.join()
    if i == 4:
        pid = os.fork()
        if pid == 0:
            y = bytearray(5_000_000)
            os._exit(len(y) and 0)
        os.waitpid(pid, 0)
    gc.collect()
    mark(f"w{i}-end".encode())
