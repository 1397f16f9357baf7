"""Shared helpers of the integration tests: run programs under heapwise and
read its JSON reports. Paths come from the environment meson sets."""
import contextlib
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

HEAPWISE = os.environ.get("HEAPWISE", "heapwise")
PROGS = os.environ.get("HW_PROGS", ".")


class TraceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hw-it-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextlib.contextmanager
    def small_tmpfs(self, size):
        """A tmpfs of SIZE (mount's size=) mounted in this test's directory
        for the with block; the test is skipped where it cannot be mounted."""
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: " + r.stderr.decode())
        try:
            yield mnt
        finally:
            subprocess.run(["umount", mnt])

    def prog(self, name):
        return os.path.join(PROGS, name)

    def run_traced(self, args, *flags, env=None, check_status=0, timeout=120):
        """Runs args under `heapwise run` in a directory of its own; returns
        (status, stderr, traces of this run)."""
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self.dir)
        out = os.path.join(run_dir, "t.%p.hwt")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([HEAPWISE, "run", "-o", out, *flags, "--", *args],
                           cwd=self.dir, env=e, capture_output=True, text=True,
                           timeout=timeout)
        if check_status is not None:
            self.assertEqual(p.returncode, check_status, p.stderr)
        return p.returncode, p.stderr, sorted(glob.glob(os.path.join(run_dir, "t.*.hwt")))

    def run_traced_stdout(self, args, *flags, timeout=120):
        """As run_traced, for a program whose output is read: (status,
        stdout, traces)."""
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self.dir)
        out = os.path.join(run_dir, "t.%p.hwt")
        p = subprocess.run([HEAPWISE, "run", "-o", out, *flags, "--", *args],
                           cwd=self.dir, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.returncode, p.stdout, sorted(glob.glob(os.path.join(run_dir, "t.*.hwt")))

    def script(self, name, text):
        """A file of this test's directory holding text; its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def heapwise(self, *args, status=0):
        p = subprocess.run([HEAPWISE, *args], capture_output=True, text=True, timeout=300)
        if status is not None:
            self.assertEqual(p.returncode, status, p.stderr + p.stdout)
        return p

    def json(self, *args):
        return json.loads(self.heapwise(*args, "--json").stdout)

    def by_function(self, trace, by="leaked"):
        """{function: callsite} grouped by the innermost frame's function."""
        doc = self.json("top", trace, "--by", by, "--group-by", "function", "-n", "100000")
        return {c["frames"][0]["function"]: c for c in doc["callsites"] if c["frames"]}


def main():
    unittest.main(verbosity=2)
