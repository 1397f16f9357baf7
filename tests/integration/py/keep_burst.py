"""Keeps about 45 MiB alive in some 300,000 allocations (the gate's tests of
a trace whose recording stopped early). With "setuid", drops root first
(setuid(65534)): the shim can no longer reopen its trace for a new chunk."""
import os
import sys

if sys.argv[1:] == ["setuid"]:
    os.setuid(65534)
KEEP = [b"x" * 10000 for _ in range(4000)]  # 40 MB
KEEP.append([str(i) * 3 for i in range(300000)])
print("kept", len(KEEP))
