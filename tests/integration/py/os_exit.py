"""Ends through os._exit(3) (as a multiprocessing child does) after a
subprocess whose program does not exist: its vfork child ends with
_exit(255), which must not mark this process's trace. Keeps ~1 MB on
KEEP's line, live at _exit."""
import os
import subprocess

try:
    subprocess.run(["/nonexistent/heapwise-test-program"])
except FileNotFoundError:
    pass
KEEP = [bytes(1000) for _ in range(1000)]  # LINE-KEEP
os._exit(3)
