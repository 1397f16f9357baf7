"""A pytest session for the plugin's follower (heapwise follow): limits
that hold and fail, a leak made by another thread, a test that forks, and
(HW_KILL_FOLLOWER=1) a test that kills the follower half-way."""
import os
import signal
import threading

import pytest

KEEP = []


@pytest.mark.limit_memory("4 MB")
def test_peak_holds():
    x = [bytearray(1 << 20) for _ in range(2)]
    del x


@pytest.mark.limit_memory("1 MB")
def test_peak_fails():
    x = [bytearray(1 << 20) for _ in range(3)]  # LINE-FW-PEAK
    del x


@pytest.mark.limit_leaks("100 KB")
def test_leak_holds():
    x = bytearray(2 << 20)
    del x
    KEEP.append(bytearray(1000))


@pytest.mark.limit_leaks("100 KB")
def test_leak_fails():
    KEEP.append(bytearray(300_000))  # LINE-FW-LEAK


def test_kill_follower(request):
    if os.environ.get("HW_KILL_FOLLOWER") == "1":
        f = request.config._heapwise.follower
        assert f is not None
        os.kill(f.pid, signal.SIGKILL)
        f.wait()


@pytest.mark.limit_leaks("100 KB")
def test_thread_leak_fails():
    def work():
        KEEP.append(bytearray(500_000))  # LINE-FW-THREAD
    t = threading.Thread(target=work)
    t.start()
    t.join()


@pytest.mark.limit_memory("2 MB")
@pytest.mark.limit_leaks("100 KB")
def test_fork_holds():
    pid = os.fork()
    if pid == 0:
        x = bytearray(8 << 20)  # the child's, in its own trace
        os._exit(len(x) and 0)
    os.waitpid(pid, 0)
    KEEP.append(bytearray(500))


@pytest.mark.limit_memory("1 MB")
@pytest.mark.limit_leaks("100 KB")
def test_both_fail():
    x = bytearray(3 << 20)
    KEEP.append(bytearray(200_000))
    del x
