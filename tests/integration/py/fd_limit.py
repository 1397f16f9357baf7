"""Runs out of file descriptors for a moment, as a busy server may: opens
/dev/null until EMFILE (limit 64), makes N allocations of 1000 bytes with no
descriptor free, closes them again and goes on (100,000 more). Usage:
fd_limit.py N"""
import errno
import os
import resource
import sys

n = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
warm = [bytes(100) for _ in range(50000)]
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
keep = [bytes(1000) for _ in range(n)]
for fd in fds:
    os.close(fd)
more = [bytes(500) for _ in range(100000)]
print("ok", len(keep), len(more))
