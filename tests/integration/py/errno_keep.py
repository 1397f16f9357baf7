"""errno across the PyMem hooks: pyerrno.so (argv[1]) calls PyObject_Malloc,
_Realloc, _Free and PyMem_Malloc, _Free with errno set to a sentinel, over
many chunks, with pauses longer than the clock's tick, from exec'd functions
(each a code object the shim writes at its first event), and after the trace
was removed (the next chunk claim fails: ENOENT). Prints (to stderr) how many
calls changed errno."""
import ctypes
import os
import sys
import time

lib = ctypes.PyDLL(sys.argv[1])
lib.pymem_errno_changes.restype = ctypes.c_int
lib.pymem_errno_changes.argtypes = [ctypes.c_long]
changes = lib.pymem_errno_changes


def count(n):
    c = changes(n)
    if c < 0:
        sys.exit("no PyObject_Malloc")
    return c


changed = count(200_000)
for i in range(200):
    ns = {"count": count}
    exec(compile("def f():\n    return count(20)\n", "<gen%d>" % i, "exec"), ns)
    changed += ns["f"]()
    if i % 50 == 0:
        time.sleep(0.02)
shim = ctypes.CDLL(None)
path = getattr(shim, "hw_trace_path", None)
if path:
    path.restype = ctypes.c_char_p
    os.remove(path())
changed += count(400_000)
print("errno changed by", changed, "calls", file=sys.stderr)
