"""A long script, as a notebook exported to a .py runs: 1,500 statements at
module level, then allocations of known sizes. Its module code's location
table (20-32 bytes a line with columns: 32 to 49 KB) is longer than a
trace's CODE record holds (16 KiB). The generated script is run from a
temporary directory; this prints its path and the lines of the two
allocations."""
import os
import runpy
import shutil
import tempfile

N = 1500
lines = ["def some_func(x, key, n):", "    return x", "data = list(range(10))"]
for i in range(N):
    lines.append('r%d = some_func(data[%d %% 10], key="abc", n=len(data) + %d)' % (i, i, i))
lines.append("late = bytearray(3_000_001)")
lines.append("later = bytearray(2_000_003)")
first = len(lines) - 1  # the 1-based line of "late"
d = tempfile.mkdtemp()
path = os.path.join(d, "long_generated.py")
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
try:
    g = runpy.run_path(path)
    print(path, first, first + 1, len(g["late"]), len(g["later"]))
finally:
    shutil.rmtree(d)
