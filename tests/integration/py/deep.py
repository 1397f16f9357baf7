"""A deep stack (integration test of the HTML flame graph): allocations at
the bottom of 100 nested calls of one function, and one near the top."""


def rec(n, size):
    if n:
        return rec(n - 1, size)
    return bytearray(size)


keep = [rec(100, 3_000_000), rec(100, 1_000_000), rec(3, 500_000)]
