"""Reference counting frees an object as soon as its last reference goes;
objects in a reference cycle wait for the garbage collector. The collector
is off here, so the effect is plain: the buffers of the pairs that point at
each other pile up until gc.collect(), those of the single nodes never do
(`heapwise timeline --group-by line`: a climb, then a drop at each
collection)."""
import gc


class Node:
    other = None


def single():
    n = Node()
    n.payload = bytearray(10_000)            # freed on return: refcount 0


def pair():
    a, b = Node(), Node()
    a.payload, b.payload = bytearray(10_000), bytearray(10_000)
    a.other, b.other = b, a                  # a cycle: freed only by the collector


gc.disable()
for _ in range(2_000):
    single()
for _ in range(2_000):
    pair()
print("collected", gc.collect())             # the drop
for _ in range(2_000):
    pair()
print("collected", gc.collect())
