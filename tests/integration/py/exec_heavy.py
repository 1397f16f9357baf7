"""Hundreds of short-lived code objects (integration test): each allocates
from its own file name, and freed code objects' addresses get reused."""
import gc

KEEP = []
for i in range(400):
    src = "KEEP.append(bytearray(%d))\n" % (100_000 + i)
    exec(compile(src, "gen%03d.py" % i, "exec"), {"KEEP": KEEP})
    gc.collect()
print("exec", len(KEEP))
