"""Three collections (issue 16 item 5): automatic collection is off, and each
gc.collect() frees ROUNDS[i] reference cycles of two objects holding a 10 KB
buffer each. Writes what each gc.collect() returned to HW_GC_OUT, one number
a line."""
import gc
import os

gc.disable()
ROUNDS = (200, 400, 300)


class Node:
    def __init__(self):
        self.other = None
        self.payload = bytearray(10_000)


found = []
for n in ROUNDS:
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a
    a = b = None
    found.append(gc.collect())
    keep = [bytearray(100) for _ in range(10)]  # something after each collection
with open(os.environ["HW_GC_OUT"], "w") as f:
    f.write("".join("%d\n" % n for n in found))
