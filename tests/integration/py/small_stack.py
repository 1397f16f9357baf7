"""Python threads with 32 KiB stacks (threading.stack_size(32768)) that
recurse and allocate (integration test, with --native: the shim must not
need more stack than is left)."""
import threading

threading.stack_size(32768)


def rec(n):
    if n:
        return rec(n - 1)
    return [bytearray(100) for _ in range(200)]  # LINE-ALLOC


def work(out):
    for depth in range(12):
        out.append(len(rec(depth)))


results = []
threads = [threading.Thread(target=work, args=(results,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert sum(results) == 4 * 12 * 200, results
