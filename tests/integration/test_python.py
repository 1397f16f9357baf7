"""Python awareness on real CPython: every allocation on its Python line, on
both 3.11 interpreters of the machine and under every allocator setting;
agreement with tracemalloc; callbacks, coroutines, threads, NumPy."""
import json
import os
import subprocess
import unittest

from helpers import TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
PY_DIR = os.path.join(HERE, "py")
INTERPRETERS = [p for p in ("/usr/bin/python3.11",
                            "/root/.pyenv/versions/3.11.7/bin/python3.11") if os.path.exists(p)]
MODES = {
    "default": ([], {}),
    "PYTHONMALLOC=malloc": ([], {"PYTHONMALLOC": "malloc"}),
    "PYTHONMALLOC=pymalloc": ([], {"PYTHONMALLOC": "pymalloc"}),
    "PYTHONMALLOC=debug": ([], {"PYTHONMALLOC": "debug"}),
    "PYTHONMALLOC=malloc_debug": ([], {"PYTHONMALLOC": "malloc_debug"}),
    "PYTHONMALLOC=pymalloc_debug": ([], {"PYTHONMALLOC": "pymalloc_debug"}),
    "-X dev": (["-X", "dev"], {}),
    "-X tracemalloc": (["-X", "tracemalloc"], {}),
}


def marker_lines(script):
    with open(os.path.join(PY_DIR, script)) as f:
        return {line.split("# ")[-1].strip(): n for n, line in enumerate(f, 1) if "# LINE-" in line}


class PythonTest(TraceTest):
    def lines(self, trace, by="allocated"):
        """{(file basename, line): callsite} grouped by the innermost Python frame."""
        doc = self.json("top", trace, "--by", by, "--group-by", "line", "-n", "100000")
        out = {}
        for c in doc["callsites"]:
            f = c["frames"][0] if c["frames"] else {"kind": None}
            if f["kind"] == "python":
                out[(os.path.basename(f["file"]), f["line"])] = c
        return out

    def env(self, extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        e.update(extra)
        e["PYTHONHASHSEED"] = "0"
        return e


class Sizes(PythonTest):
    def check_sizes(self, python, flags, extra_env):
        status, err, traces = self.run_traced([python, *flags, os.path.join(PY_DIR, "sizes.py")],
                                              env=self.env(extra_env), check_status=3)
        self.assertEqual(len(traces), 1, err)
        self.assertNotIn("not known", err)
        mark = marker_lines("sizes.py")
        rows = self.lines(traces[0])
        at = lambda tag: rows[("sizes.py", mark[tag])]
        self.assertEqual(at("LINE-STR")["allocated_bytes"], 5_000_049)  # sys.getsizeof
        self.assertEqual(at("LINE-STR")["count"], 1)
        ba = at("LINE-BA")["allocated_bytes"]
        self.assertGreaterEqual(ba, 4 * 1_000_001)
        self.assertLess(ba, 4 * 1_000_001 + 2_000)
        lst = at("LINE-LIST")["allocated_bytes"]
        self.assertGreaterEqual(lst, 2_000_000)
        self.assertLess(lst, 2_000_000 + 200)
        gen = at("LINE-GEN")["allocated_bytes"]
        self.assertGreaterEqual(gen, 3 * 300_033)
        self.assertLess(gen, 3 * 300_033 + 500)
        s = self.json("summary", traces[0])
        self.assertGreaterEqual(s["threads"], 2)
        self.assertGreater(s["kinds"]["pyobj"]["allocations"], 1000)
        self.assertGreater(s["kinds"]["pymem"]["allocations"], 100)
        # the thread's stack goes back to the Thread machinery
        doc = self.json("top", traces[0], "--by", "allocated", "-n", "100000")
        list_rows = [c for c in doc["callsites"]
                     if c["frames"] and c["frames"][0]["kind"] == "python"
                     and c["frames"][0]["line"] == mark["LINE-LIST"]]
        self.assertTrue(list_rows)
        names = [f["function"] for f in list_rows[0]["frames"]]
        self.assertIn("Thread.run", names)
        self.assertEqual(names[0], "make_list")

    def test_interpreters_and_allocators(self):
        for python in INTERPRETERS:
            for mode, (flags, env) in MODES.items():
                with self.subTest(python=python, mode=mode):
                    self.check_sizes(python, flags, env)

    def test_native_mode_splices_python_frames(self):
        python = INTERPRETERS[0]
        _, _, traces = self.run_traced([python, os.path.join(PY_DIR, "sizes.py")], "--native",
                                       env=self.env({}), check_status=3)
        mark = marker_lines("sizes.py")
        doc = self.json("top", traces[0], "--by", "allocated", "-n", "100000")
        rows = [c for c in doc["callsites"] if c["allocated_bytes"] == 5_000_049 and any(
            f["kind"] == "python" and f["line"] == mark["LINE-STR"] for f in c["frames"])]
        self.assertEqual(len(rows), 1)
        kinds = [f["kind"] for f in rows[0]["frames"]]
        first_py = kinds.index("python")
        self.assertGreater(first_py, 0)  # native frames under the Python line
        self.assertIn("native", kinds[first_py:])  # and the interpreter's frames above
        funcs = [f["function"] for f in rows[0]["frames"]]
        self.assertIn("make_str", funcs)
        self.assertIn("main", funcs)
        self.assertIn("<module>", funcs)
        self.assertNotIn("_PyEval_EvalFrameDefault", funcs)  # replaced by Python frames


class Shapes(PythonTest):
    def test_callbacks_coroutines_native_threads(self):
        python = INTERPRETERS[0]
        lib = self.prog("nthread.so")
        _, err, traces = self.run_traced([python, os.path.join(PY_DIR, "shapes.py"), lib],
                                         env=self.env({}))
        mark = marker_lines("shapes.py")
        doc = self.json("top", traces[0], "--by", "allocated", "-n", "100000")

        def stacks_with(line):
            return [c for c in doc["callsites"] if c["frames"]
                    and c["frames"][0]["kind"] == "python" and c["frames"][0]["line"] == line
                    and c["frames"][0]["file"].endswith("shapes.py")]

        cb = stacks_with(mark["LINE-CALLBACK"])
        self.assertTrue(cb)
        funcs = [f["function"] for f in cb[0]["frames"]]
        self.assertEqual(funcs[0], "compare")
        self.assertIn("sort_with_c_callback", funcs)  # the Python caller of qsort
        coro = stacks_with(mark["LINE-CORO"])
        self.assertTrue(coro)
        # two bytes objects (90,034 and 90,035 bytes) and the two ints n + 90_000
        total = sum(c["allocated_bytes"] for c in coro)
        self.assertGreaterEqual(total, 2 * 90_033 + 3)
        self.assertLess(total, 2 * 90_033 + 3 + 200)
        self.assertEqual(coro[0]["frames"][0]["function"], "fetch")
        # the native thread: native frames only, with its own function
        native = [c for c in doc["callsites"] if c["allocated_bytes"] == 123_457]
        self.assertEqual(len(native), 1, [c["allocated_bytes"] for c in doc["callsites"][:5]])
        self.assertTrue(all(f["kind"] == "native" for f in native[0]["frames"]))
        self.assertEqual(native[0]["frames"][0]["function"], "native_worker")
        # not under a Python frame: a Python leak only with --include-all
        self.assertEqual(native[0]["leaked_bytes"], 0)
        every = self.json("top", traces[0], "--by", "leaked", "--include-all", "-n", "100000")
        self.assertIn(123_457, [c["leaked_bytes"] for c in every["callsites"]])


class CodeReuse(PythonTest):
    def test_reused_code_addresses_keep_their_names(self):
        python = INTERPRETERS[0]
        _, _, traces = self.run_traced([python, os.path.join(PY_DIR, "exec_heavy.py")],
                                       env=self.env({}))
        rows = self.lines(traces[0])
        for i in range(400):
            row = rows.get(("gen%03d.py" % i, 1))
            self.assertIsNotNone(row, "gen%03d.py" % i)
            # its own buffer (100,000 + i bytes, + the bytearray object), and
            # KEEP's list growing on that line; never a buffer of another file
            size = 100_000 + i
            self.assertGreaterEqual(row["allocated_bytes"], size + 1, i)
            self.assertLess(row["allocated_bytes"], size + 4_000, i)


class NumPy(PythonTest):
    def test_array_on_its_line(self):
        python = "/usr/bin/python3.11"
        if subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode:
            self.skipTest("python3-numpy is not installed")
        _, _, traces = self.run_traced([python, os.path.join(PY_DIR, "numpy_line.py")],
                                       env=self.env({}))
        mark = marker_lines("numpy_line.py")
        # Grouped by line (tracemalloc's way) the innermost Python frame is
        # NumPy's own np.ones; the user's line is the next frame of that stack.
        doc = self.json("top", traces[0], "--by", "allocated", "-n", "100000")
        user = [c for c in doc["callsites"] if any(
            f["kind"] == "python" and f["file"].endswith("numpy_line.py")
            and f["line"] == mark["LINE-NUMPY"] for f in c["frames"])]
        total = sum(c["allocated_bytes"] for c in user)
        self.assertGreaterEqual(total, 8_000_000)
        self.assertLess(total, 8_000_000 + 2_000)
        self.assertEqual(user[0]["frames"][0]["function"], "ones")


class Tracemalloc(PythonTest):
    def test_live_bytes_per_line_agree(self):
        python = INTERPRETERS[0]
        script = os.path.join(PY_DIR, "agree.py")
        out = os.path.join(self.dir, "tm.json")
        r = subprocess.run([python, "-X", "tracemalloc=1", script],
                           env=self.env({"HW_TRACEMALLOC_OUT": out}), capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            tm = [s for s in json.load(f) if s["file"] == script][:10]
        self.assertEqual(len(tm), 10)
        _, _, traces = self.run_traced([python, script], env=self.env({}))
        hw = self.lines(traces[0], by="leaked")
        for s in tm:
            got = hw[("agree.py", s["line"])]["leaked_bytes"]
            self.assertAlmostEqual(got / s["size"], 1.0, delta=0.05,
                                   msg=f"line {s['line']}: heapwise {got}, tracemalloc {s['size']}")


class Hints(PythonTest):
    def test_missing_symbols_hint(self):
        python = "/usr/bin/python3.11"
        _, _, traces = self.run_traced([python, "-c", "x = [0] * 1000"], "--native",
                                       env=self.env({}))
        p = self.heapwise("top", traces[0])
        if "python3.11-dbg" not in p.stderr:
            # with the debug symbols installed the frames are named instead
            self.assertIn("PyObject_Malloc", p.stdout)


if __name__ == "__main__":
    main()
