"""pytest plugin: memory limits per test, measured by heapwise.

Run the tests under heapwise with this plugin loaded (tools/ on PYTHONPATH):

    heapwise run -- python3 -m pytest -p pytest_heapwise [--heapwise-repeat N] tests/

Markers (the names pytest-memray uses, so tests can switch):

    @pytest.mark.limit_memory("24 MB")  the peak of the memory the test allocated
                                        (memory it allocated and had live at once)
    @pytest.mark.limit_leaks("1 MB")    memory the test allocated that is still live
                                        after it returned and gc.collect() ran

Sizes: a number with B, KB, MB, GB (or KiB, MiB, GiB); K = 1024, as in
`heapwise check`. A failing test's message names the limit, the measured value
and the top lines, each the innermost line of the user's code (a leak made in
json.loads names the test's line that called it, not json/decoder.py).

--heapwise-repeat N runs each leak-gated test N times and counts only growth
that repeats: the smallest leak among runs 2..N. A cache that is filled on the
first run is not a leak (the way CPython's refleak hunting works).

How: the plugin puts a marker (hw_mark) before and after each gated test and
judges the window between them as `heapwise check --between` would, on the
trace the process is writing; a test over a limit fails in its call phase's
report (its captured output and log records stay with it). One `heapwise
follow` process, started at the first gated test, replays the trace once for
the whole session and judges each window as it comes (a `check --between`
per test replayed the trace from its start each time: a session's cost grew
with the square of its tests). Should the follower die or fail, the plugin
says so once and goes on with a `heapwise check --between` per test. Outside heapwise the markers do nothing and the plugin
says so once. When recording stopped early (a size cap, the free-space
reserve, a file the process can no longer open: the trace's header says so),
or the shim is loaded but writes no trace, every gated test fails with the
reason instead of passing unchecked. Under
`heapwise run --sample` (HEAPWISE_SAMPLE) the limits are not checked either,
and the plugin says so once: one test's figures from a sampled trace rest on a
few samples, and a gate on them would fail at random.
"""
import ctypes
import gc
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import pytest

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2,
          "MIB": 1024**2, "G": 1024**3, "GB": 1024**3, "GIB": 1024**3}


def parse_size(text):
    """'24 MB' -> bytes (K = 1024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (try '24 MB')")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def pytest_addoption(parser):
    group = parser.getgroup("heapwise", "memory limits measured by heapwise")
    group.addoption("--heapwise-repeat", type=int, default=1, metavar="N",
                    help="run each leak-gated test N times; count only growth that repeats")
    group.addoption("--heapwise-bin", default=os.environ.get("HEAPWISE_BIN", "heapwise"),
                    metavar="PATH", help="the heapwise command (default: heapwise on PATH)")


_STOP_OFFSET = 4064  # trace_format.h: the stop record, last 32 bytes of the header page
_STOP_MAGIC = 0x50545348


class _Tracer:
    def __init__(self, config):
        lib = ctypes.CDLL(None)
        self.mark_fn = getattr(lib, "hw_mark", None)
        path_fn = getattr(lib, "hw_trace_path", None)
        self.path = None
        if path_fn:
            path_fn.restype = ctypes.c_char_p
            raw = path_fn()
            self.path = os.path.abspath(raw.decode()) if raw else None
        self.bin = config.getoption("--heapwise-bin")
        self.repeat = max(1, config.getoption("--heapwise-repeat"))
        self.count = 0
        self._stop = None
        # the analyzer must not be traced itself
        self.env = dict(os.environ)
        pre = [p for p in self.env.get("LD_PRELOAD", "").split(":")
               if p and "libheapwise" not in os.path.basename(p)]
        self.env["LD_PRELOAD"] = ":".join(pre)
        if not pre:
            del self.env["LD_PRELOAD"]

        # a sampled trace (heapwise run --sample): no per-test gate
        sample = os.environ.get("HEAPWISE_SAMPLE", "").strip()
        self.sampled = sample if sample not in ("", "0") else None
        self.config = config
        self.follower = None  # the heapwise follow process, once started
        self.follower_pid = None  # the process that started it (not a fork of it)
        self.follow_off = None  # why the plugin went back to a check per test
        self.follower_err = None

    @property
    def traced(self):
        return bool(self.mark_fn and self.path)

    @property
    def loaded_untraced(self):
        """The shim is in this process but it writes no trace (it could not
        make one: its line on stderr says why): limits cannot be checked,
        and a gated test must not pass as if they held."""
        return (bool(self.mark_fn) and not self.path and not self.sampled
                and not self.not_followed)

    @property
    def not_followed(self):
        """A child process `heapwise run --no-follow` leaves untraced on
        purpose (the shim is in it, it writes nothing): not a failure to
        trace; its limits are not checked and the header says why."""
        root = os.environ.get("HEAPWISE_ROOT_PID", "")
        return (os.environ.get("HEAPWISE_FOLLOW") == "0" and root.isdigit()
                and int(root) != os.getpid())

    @property
    def active(self):
        return self.traced and not self.sampled

    def stopped(self):
        """Why recording stopped early (a size limit, an I/O error), or None
        while it goes on: the trace's header says so (trace_format.h), and
        `heapwise check` words it. Read again for each test until it stops."""
        if self._stop is None and self.path:
            try:
                with open(self.path, "rb") as f:
                    f.seek(_STOP_OFFSET)
                    rec = f.read(8)
            except OSError:
                return None
            if len(rec) == 8:
                magic, reason = struct.unpack("<II", rec)
                if magic == _STOP_MAGIC and reason:
                    # refused before any replay: the reason, at the cost of
                    # opening the trace
                    p = subprocess.run([self.bin, "check", "--max-allocations", "0", self.path],
                                       capture_output=True, text=True, env=self.env)
                    m = re.search(r"recording stopped at .*?figures are up to then", p.stderr)
                    self._stop = (f"{self.path}: " +
                                  (m.group(0) if m else f"recording stopped early (reason {reason})"))
        return self._stop

    def window(self):
        self.count += 1
        return f"pytest-heapwise-{os.getpid()}-{self.count}-start", \
               f"pytest-heapwise-{os.getpid()}-{self.count}-end"

    def mark(self, label):
        self.mark_fn(label.encode())

    def run(self, *args):
        p = subprocess.run([self.bin, *args, self.path], capture_output=True, text=True,
                           env=self.env)
        if p.returncode == 2:
            raise RuntimeError(f"heapwise {' '.join(args)} failed: {p.stderr.strip()}")
        return p

    def leaked(self, start, end):
        p = self.run("summary", "--json", "--between", start, end)
        return json.loads(p.stdout)["leaked_bytes"]

    def _follow_start(self):
        self.follower_err = tempfile.TemporaryFile()
        self.follower = subprocess.Popen([self.bin, "follow", self.path], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.follower_err,
                                         env=self.env, close_fds=True)
        self.follower_pid = os.getpid()

    def _follow_off(self, why):
        """Back to a `heapwise check` per test, for the rest of the session
        (said once)."""
        f, self.follower = self.follower, None
        if f is not None:
            try:
                f.kill()
                f.wait()
            except OSError:
                pass
            self.follower_err.seek(0)
            err = self.follower_err.read().decode(errors="replace").strip().splitlines()
            if err:
                why = f"{why}: {err[-1]}"
        self.follow_off = why
        msg = (f"heapwise: the follower stopped ({why}); each limit is checked with "
               "heapwise check --between from here on")
        rep = self.config.pluginmanager.get_plugin("terminalreporter")
        if rep is not None:
            rep.write_line(msg, yellow=True)
        else:
            print(msg, file=sys.stderr)

    def _follow_window(self, start, end, peak_limit, leak_limit):
        """The parts of one window's answer: {name: (rc, stdout, stderr)}."""
        f = self.follower
        req = "\t".join(["window", start, end, "-" if peak_limit is None else str(peak_limit),
                         "-" if leak_limit is None else str(leak_limit)]) + "\n"
        f.stdin.write(req.encode())
        f.stdin.flush()
        parts = {}
        while True:
            line = f.stdout.readline()
            if not line:
                raise OSError("it ended")
            head = line.decode().split()
            if head == ["end"]:
                break
            if len(head) != 4:
                raise OSError(f"an answer it did not expect: {line[:80]!r}")
            name, rc, nout, nerr = head[0], int(head[1]), int(head[2]), int(head[3])
            out, err = f.stdout.read(nout), f.stdout.read(nerr)
            if len(out) != nout or len(err) != nerr:
                raise OSError("it ended")
            parts[name] = (rc, out.decode(errors="replace"), err.decode(errors="replace"))
        if "error" in parts:
            raise OSError(parts["error"][2].strip())
        return parts

    def judge(self, peak_limit, leak_limit, windows):
        """The failures of one test's limits, [] when they hold."""
        if self.follow_off is None and self.follower_pid in (None, os.getpid()):
            try:
                if self.follower is None:
                    self._follow_start()
                followed = self._outcome(self._judge_followed, peak_limit, leak_limit, windows)
                if os.environ.get("HEAPWISE_PLUGIN_CROSSCHECK") == "1":  # the tests'
                    checked = self._outcome(self._judge_checked, peak_limit, leak_limit,
                                            windows)
                    if checked != followed:
                        return [f"heapwise crosscheck: heapwise follow said {followed!r}, "
                                f"heapwise check said {checked!r}"]
                if isinstance(followed, tuple):
                    raise RuntimeError(followed[1])
                return followed
            except (OSError, ValueError) as e:
                self._follow_off(str(e) or type(e).__name__)
        return self._judge_checked(peak_limit, leak_limit, windows)

    @staticmethod
    def _outcome(fn, *args):
        """fn's failures, or ("error", the text of the RuntimeError it raised)."""
        try:
            return fn(*args)
        except RuntimeError as e:
            return ("error", str(e))

    def _judge_followed(self, peak_limit, leak_limit, windows):
        """judge's answer from the follower (the same words as _judge_checked's)."""
        answers = []
        for i, (s, e) in enumerate(windows):
            last = i == len(windows) - 1
            answers.append(self._follow_window(s, e, peak_limit if last else None,
                                               leak_limit if last else None))
        start, end = windows[-1]
        failures = []

        def failed(args, part):
            return RuntimeError(f"heapwise {' '.join(args)} failed: {part[2].strip()}")
        if peak_limit is not None:
            p = answers[-1]["peak"]
            if p[0] == 2:
                raise failed(("check", "--max-peak", str(peak_limit), "--between", start, end), p)
            if p[0] == 1:
                failures.append(f"limit_memory: the test allocated more than {peak_limit} "
                                f"bytes at its peak\n{p[1]}")
        if leak_limit is not None:
            leaks = []
            for (s, e), ans in zip(windows, answers):
                p = ans["leaked"]
                if p[0] == 2:
                    raise failed(("summary", "--json", "--between", s, e), p)
                leaks.append(int(p[1]))
            repeating = min(leaks[1:]) if len(leaks) > 1 else leaks[0]
            if repeating > leak_limit:
                p = answers[-1]["leak"]
                if p[0] == 2:
                    raise failed(("check", "--max-leaked", str(leak_limit), "--between", start,
                                  end), p)
                runs_note = (f" (every run of {len(leaks)} leaked: {leaks})" if len(leaks) > 1
                             else "")
                failures.append(f"limit_leaks: the test leaked {repeating} bytes, more than "
                                f"{leak_limit}{runs_note}\n{p[1]}")
        return failures

    def _judge_checked(self, peak_limit, leak_limit, windows):
        """judge's answer from a `heapwise check --between` per limit."""
        start, end = windows[-1]
        failures = []
        if peak_limit is not None:
            p = self.run("check", "--max-peak", str(peak_limit), "--between", start, end)
            if p.returncode == 1:
                failures.append(f"limit_memory: the test allocated more than {peak_limit} "
                                f"bytes at its peak\n{p.stdout}")
        if leak_limit is not None:
            leaks = [self.leaked(s, e) for s, e in windows]
            repeating = min(leaks[1:]) if len(leaks) > 1 else leaks[0]
            if repeating > leak_limit:
                p = self.run("check", "--max-leaked", str(leak_limit), "--between", start, end)
                runs_note = (f" (every run of {len(leaks)} leaked: {leaks})" if len(leaks) > 1
                             else "")
                failures.append(f"limit_leaks: the test leaked {repeating} bytes, more than "
                                f"{leak_limit}{runs_note}\n{p.stdout}")
        return failures


def pytest_configure(config):
    config.addinivalue_line("markers", "limit_memory(size): fail when the peak of the memory "
                                       "the test allocated exceeds size (heapwise)")
    config.addinivalue_line("markers", "limit_leaks(size): fail when the test leaves more than "
                                       "size of what it allocated live (heapwise)")
    config._heapwise = _Tracer(config)


def pytest_unconfigure(config):
    """The follower ends with the session (before heapwise run, seeing the
    trace closed, compresses it)."""
    t = getattr(config, "_heapwise", None)
    if t is None or t.follower is None or t.follower_pid != os.getpid():
        return
    f, t.follower = t.follower, None
    try:
        f.stdin.close()
        f.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        f.kill()
        f.wait()


def pytest_report_header(config):
    t = config._heapwise
    if t.active:
        stop = t.stopped()
        if stop:
            return (f"heapwise: {stop}; every limit_memory and limit_leaks test fails")
        return f"heapwise: limits checked on {t.path}"
    if t.traced:
        return (f"heapwise: {t.path} is sampled (HEAPWISE_SAMPLE={t.sampled}): one test's "
                "figures would be estimates from a few samples; limit_memory and limit_leaks "
                "are not checked (run without --sample to check them)")
    if t.loaded_untraced:
        return ("heapwise: the shim is loaded but this process writes no trace (heapwise's "
                "line on stderr says why): every limit_memory and limit_leaks test fails")
    if t.not_followed:
        return ("heapwise: this process is not traced (a child of heapwise run --no-follow): "
                "limit_memory and limit_leaks are not checked here")
    return ("heapwise: not running under heapwise (heapwise run -- python3 -m pytest ...): "
            "limit_memory and limit_leaks are not checked")


def _limit(item, name):
    m = item.get_closest_marker(name)
    if not m:
        return None
    if not m.args:
        raise pytest.UsageError(f"{item.nodeid}: @{name} needs a size, e.g. {name}('1 MB')")
    return parse_size(m.args[0])


# The gate fails a test from pytest_runtest_makereport, by changing the call
# phase's report: failing inside pytest_runtest_call's hookwrapper after its
# yield (pytest.fail) made pluggy 1.0 skip the teardown of the other wrappers
# of that hook, pytest's capture and logging among them (the test's output
# showed up under its teardown, its log records were lost).
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    t = item.config._heapwise
    peak_limit, leak_limit = _limit(item, "limit_memory"), _limit(item, "limit_leaks")
    if peak_limit is None and leak_limit is None:
        yield
        return
    if t.loaded_untraced or (t.active and t.stopped()):
        item._heapwise = (peak_limit, leak_limit, None)
        yield
        return
    if not t.active:
        yield
        return
    runs = t.repeat if leak_limit is not None else 1
    windows = []
    for _ in range(runs - 1):  # the extra runs of --heapwise-repeat
        start, end = t.window()
        gc.collect()
        t.mark(start)
        item.runtest()
        gc.collect()
        t.mark(end)
        windows.append((start, end))
    start, end = t.window()
    gc.collect()
    t.mark(start)
    outcome = yield
    gc.collect()
    t.mark(end)
    windows.append((start, end))
    if outcome.excinfo is None:  # else the test failed on its own
        item._heapwise = (peak_limit, leak_limit, windows)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    pending = item.__dict__.pop("_heapwise", None)
    if call.when != "call" or pending is None:
        return
    rep = outcome.get_result()
    if not rep.passed:
        return
    t = item.config._heapwise
    peak_limit, leak_limit, windows = pending
    names = " and ".join(n for n, v in (("limit_memory", peak_limit),
                                         ("limit_leaks", leak_limit)) if v is not None)
    if windows is None:
        why = t.stopped() or ("the heapwise shim is loaded but this process writes no trace "
                              "(heapwise's line on stderr says why)")
        failures = [f"heapwise cannot check {names}: {why}"]
    else:
        try:
            failures = t.judge(peak_limit, leak_limit, windows)
        except RuntimeError as e:
            stop = t.stopped()
            failures = [f"heapwise cannot check {names}: {stop or e}"]
    if failures:
        rep.outcome = "failed"
        rep.longrepr = "\n".join(failures)
