"""examples/: each tutorial effect, traced by heapwise, shows in its reports
on the example's own lines (README "What the tutorials teach, on your
lines"). Each test runs one example under heapwise run and asserts the
effect with the figures a user reads: `lines`, `leaks --group-by line`,
`timeline --group-by line`."""
import json
import os
import subprocess
import unittest

from helpers import TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
PY = "/usr/bin/python3.11"


def line_of(name, text):
    """The number of the line of examples/NAME that holds text."""
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(f"{text!r} is not in {name}")


class Examples(TraceTest):
    def trace(self, name, *args):
        _, err, traces = self.run_traced([PY, os.path.join(EXAMPLES, name), *args])
        self.assertTrue(traces, err)
        return traces[0]

    def lines(self, trace, name):
        doc = json.loads(self.heapwise("lines", trace, name, "--json").stdout)
        self.assertEqual(len(doc["files"]), 1, doc)
        return {ln["line"]: ln for ln in doc["files"][0]["lines"]}

    def series(self, trace, name):
        """The most each line of examples/NAME had live at any time, and
        what it had at the end: timeline --group-by line, every line."""
        out = os.path.join(self.dir, "t.json")
        # every line: the interpreter's start-up makes hundreds of its own
        # (more with each .pth file of site-packages), and the example's
        # smallest lines (a generator's one float) must not fall out
        self.heapwise("timeline", trace, "--group-by", "line", "-n", "1000000", "-o", out)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        got = {}
        self.marks = doc["marks"]
        for s in doc["series"]:
            frames = s["callsite"]["frames"]
            if frames and frames[0]["file"].endswith("/" + name):
                got[frames[0]["line"]] = (max(s["live_bytes"]), s["live_bytes"][-1],
                                          s["live_bytes"])
        return got

    def test_list_comprehension_holds_every_item(self):
        name = "list_vs_generator.py"
        trace = self.trace(name)
        gen, lst = line_of(name, "sum(x * 0.5 for"), line_of(name, "sum([x * 0.5 for")
        lines = self.lines(trace, name)
        # both lines make a million floats (24 B each)
        self.assertGreater(lines[gen]["allocated_bytes"], 24_000_000)
        self.assertGreater(lines[lst]["allocated_bytes"], 24_000_000)
        # the list's line holds them all at the heap's peak: 1 M floats and the list
        self.assertGreater(lines[lst]["peak_bytes"], 30_000_000)
        self.assertLess(lines[gen]["peak_bytes"], 10_000)
        # at no time does the generator's line hold more than a few items
        s = self.series(trace, name)
        self.assertGreater(s[lst][0], 30_000_000)
        self.assertLess(s[gen][0], 10_000, s[gen])

    def test_unbounded_caches_grow_and_stay(self):
        name = "growing_cache.py"
        trace = self.trace(name)
        render = line_of(name, "kept by the unbounded cache")
        bounded = line_of(name, "at most 256 kept")
        rows = line_of(name, "kept by the module's dict")
        leaks = json.loads(self.heapwise("leaks", trace, "--group-by", "line", "-n", "100",
                                         "--json").stdout)
        leaked = {}
        for c in leaks["callsites"]:
            fr = c["frames"][0]
            if fr["file"].endswith("/" + name):
                leaked[fr["line"]] = c["leaked_bytes"]
        # 20,000 strings of 20 * "row N " (~150 B) and lists of 40 pointers
        self.assertGreater(leaked[render], 20_000 * 150)
        self.assertGreater(leaked[rows], 20_000 * 40 * 8)
        self.assertLess(leaked.get(bounded, 0), 256 * 200 + 64 * 1024)
        # and they grow through the run (until Python's finalization frees
        # them): each quarter holds more than the one before
        s = self.series(trace, name)
        for line in (render, rows):
            v = s[line][2]
            start = next(i for i, x in enumerate(v) if x)
            top = v.index(max(v))
            marks = [v[start + (top - start) * k // 4] for k in range(5)]
            self.assertEqual(marks, sorted(marks), marks)
            # linear growth would give 4x; the coarse clock (1-4 ms ticks
            # in a run of about 100 ms), the dict's resizes and the
            # scheduler make the quarters uneven: 3.3-5.6x here quiet and
            # beside three busy loops, 2.8x and once 1.8x in CI's ASan half
            # (load 12: the suites run side by side, and a run this short
            # loses whole time slices); a cache that stopped growing after
            # its first quarter gives 1x
            self.assertGreater(marks[-1], 1.5 * marks[1])

    def test_cycles_wait_for_the_collector(self):
        name = "cycles.py"
        trace = self.trace(name)
        single = line_of(name, "freed on return")
        pair = line_of(name, "a.payload, b.payload")
        s = self.series(trace, name)
        # a single node's buffer is freed on return: one at a time
        self.assertLess(s[single][0], 2 * 10_100, s.get(single))
        # the pairs' buffers pile up: 2,000 pairs of 2 x 10 kB before gc.collect()
        top, end, v = s[pair]
        self.assertGreater(top, 2_000 * 2 * 10_000)
        self.assertLess(end, 10_000)
        # ...drop at the first collection, then climb again until the second:
        # each collection frees them (its mark says how much), and the series
        # is full twice with a dip between. Events take the coarse clock's
        # time (4 ms ticks here), so a dip can be shallow in the series: on
        # 3.13t the climb after the first collection takes two ticks, and the
        # frees share a tick with half of it (40 MB, then 17-24 MB, not 2 MB)
        full = 2_000 * 2 * 10_000 * 0.9
        freed = [m["freed_bytes"] for m in self.marks
                 if m["kind"] == "gc-end" and "gen 2" in m["label"]]
        self.assertEqual(len(freed), 2, self.marks)
        self.assertGreater(min(freed), full, self.marks)
        tops = [i for i in range(len(v)) if v[i] > full]
        self.assertTrue(tops, v)
        dip = next((i for i in range(tops[0], len(v)) if v[i] < 0.75 * top), None)
        self.assertIsNotNone(dip, v)
        self.assertTrue(any(i > dip for i in tops), v)

    def test_numpy_arrays_are_compact(self):
        if subprocess.run([PY, "-c", "import numpy"], capture_output=True).returncode:
            raise unittest.SkipTest("numpy is not installed for " + PY)
        name = "numpy_vs_lists.py"
        trace = self.trace(name)
        lst = line_of(name, "as_list = ")
        arr = line_of(name, "as_array = ")
        lines = self.lines(trace, name)
        # a million floats: 24 B objects + 8 B pointers vs 8 B in one buffer
        self.assertGreater(lines[lst]["leaked_bytes"], 1_000_000 * 32)
        self.assertGreater(lines[arr]["leaked_bytes"], 8_000_000)
        self.assertLess(lines[arr]["leaked_bytes"], 8_100_000)
        self.assertGreater(lines[lst]["leaked_bytes"], 3.5 * lines[arr]["leaked_bytes"])


if __name__ == "__main__":
    main()
