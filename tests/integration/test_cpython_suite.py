"""CPython's own regression tests (Debian libpython3.11-testsuite) give the
same result with and without heapwise, children followed. Prints the wall-time
ratio. Both runs use regrtest's -w (a failed test is run again, verbosely), as
CPython's CI does: a few of these tests are timing-sensitive on a loaded
2-core machine, with or without heapwise."""
import os
import re
import subprocess
import time
import unittest

from helpers import HEAPWISE, TraceTest, main

PY = "/usr/bin/python3.11"
TESTS = ["test_json", "test_threading", "test_subprocess", "test_gc", "test_weakref",
         "test_asyncio.test_base_events", "test_mmap"]


def regrtest(prefix, cwd):
    t = time.perf_counter()
    p = subprocess.run([*prefix, PY, "-m", "test", "-w", *TESTS], cwd=cwd, capture_output=True,
                       text=True, timeout=1200)
    took = time.perf_counter() - t
    result = re.search(r"Tests result: ([\w ]+)", p.stdout)
    outcome = result.group(1).strip() if result else "none"
    # "FAILURE then SUCCESS": failed once, passed when run again
    final = "SUCCESS" if outcome.endswith("SUCCESS") else outcome
    failed = re.findall(r"(test\S*) failed", p.stdout) if final != "SUCCESS" else []
    return (final, sorted(set(failed)), p, took, outcome)


@unittest.skipUnless(os.path.exists("/usr/lib/python3.11/test/test_subprocess.py"),
                     "libpython3.11-testsuite is not installed")
class CPythonSuite(TraceTest):
    def test_same_result_with_and_without_heapwise(self):
        plain = regrtest([], self.dir)
        out = os.path.join(self.dir, "t.%p.hwt")
        traced = regrtest([HEAPWISE, "run", "-o", out, "--"], self.dir)
        self.assertEqual(plain[0], "SUCCESS", plain[2].stdout[-2000:])
        self.assertEqual((traced[0], traced[1]), (plain[0], plain[1]),
                         traced[2].stdout[-3000:] + traced[2].stderr[-2000:])
        shim_lines = [l for l in traced[2].stderr.splitlines()
                      if l.startswith("heapwise:") and "trace written" not in l
                      and not l.startswith("heapwise: compressed ")]  # run's own line
        self.assertEqual(shim_lines, [])
        traces = [f for f in os.listdir(self.dir) if f.endswith(".hwt")]
        print(f"\nCPython tests: untraced {plain[3]:.1f} s ({plain[4]}), under heapwise "
              f"{traced[3]:.1f} s ({traced[4]}), {traced[3] / plain[3]:.2f}x, {len(traces)} traces")
        self.assertGreater(len(traces), 10)  # subprocess children were traced too

    def test_runner_children_keep_their_traces(self):
        # regrtest runs the tests in a temporary directory that it removes
        # afterwards, and --fail-env-changed fails a test that leaves a file
        # there: the children's traces belong where heapwise run started
        p = subprocess.run([HEAPWISE, "run", "--", PY, "-m", "test", "--fail-env-changed",
                            "test_json"], cwd=self.dir, capture_output=True, text=True,
                           timeout=600)
        self.assertIn("Tests result: SUCCESS", p.stdout, p.stdout[-3000:] + p.stderr[-2000:])
        self.assertEqual(p.returncode, 0)
        written = [l.split(" to ", 1)[1].split(" (")[0] for l in p.stderr.splitlines()
                   if l.startswith("heapwise: trace written to ")]
        self.assertGreater(len(written), 10)  # test_json's json.tool children
        self.assertEqual(sorted(written), sorted(os.listdir(self.dir)))


if __name__ == "__main__":
    main()
