"""The HTML reports in a real browser (Debian's chromium, headless): the page
renders the expected names, no script error happens, and names that are markup
in a trace render as text. The flame graph's first view, zoom and search are
driven like a user would, through puppeteer-core (tests/browser, installed by
`npm ci`)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from helpers import TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(HERE), "golden")
CHROMIUM = shutil.which("chromium")
NODE = shutil.which("node")
DRIVER = os.path.join(os.path.dirname(HERE), "browser")
PUPPETEER = os.path.join(DRIVER, "node_modules", "puppeteer-core")


@unittest.skipUnless(CHROMIUM, "chromium is not installed (Debian package chromium)")
class Browser(TraceTest):
    def render(self, page):
        """The DOM after the page's scripts ran, and the console errors."""
        profile = tempfile.mkdtemp(prefix="chr-", dir=self.dir)
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--user-data-dir=" + profile, "--window-size=1200,900",
                            "--enable-logging=stderr", "--v=0", "--dump-dom",
                            "file://" + page], capture_output=True, text=True, timeout=120)
        errors = [l for l in p.stderr.splitlines() if "CONSOLE" in l and
                  ("Uncaught" in l or "Error" in l)]
        return p.stdout, errors

    def report(self, trace, *args):
        out = os.path.join(self.dir, f"r{len(os.listdir(self.dir))}{args[-1]}")
        self.heapwise(*args[:-1], trace, "-o", out)
        return out

    def test_flamegraph_and_timeline_of_a_python_program(self):
        script = os.path.join(HERE, "py", "sizes.py")
        _, _, traces = self.run_traced(["/usr/bin/python3.11", script], check_status=3)
        dom, errors = self.render(self.report(traces[0], "flamegraph", "--metric",
                                              "allocated", ".html"))
        self.assertEqual(errors, [])
        self.assertIn("make_str", dom)
        self.assertIn('class="f py"', dom)  # frames were drawn by the script
        dom, errors = self.render(self.report(traces[0], "timeline", ".html"))
        self.assertEqual(errors, [])
        self.assertIn("make_str", dom)  # in the legend
        self.assertIn("<polygon", dom)  # areas were drawn

    def test_sampled_reports_give_their_intervals(self):
        """A sampled trace's flame graph says so in its heading, and each
        frame's tooltip has the 95% interval of its bytes; the timeline's
        heading says so too, and under the mouse each series has its
        interval."""
        script = os.path.join(HERE, "py", "sizes.py")
        _, _, traces = self.run_traced(["/usr/bin/python3.11", script], "--sample", "16K",
                                       check_status=3)
        dom, errors = self.render(self.report(traces[0], "flamegraph", ".html"))
        self.assertEqual(errors, [])
        self.assertIn("sampled every 16.0 KiB on average", dom)
        # the root: the interpreter's small blocks, sampled
        self.assertRegex(dom, r'class="f root"[^>]*title="all\n[\d.]+ [KMG]?i?B '
                              r'\u00b1 [\d.]+ [KMG]?i?B \(\d+ samples?[,)]')
        # 5 MB blocks are always recorded and count as themselves
        self.assertRegex(dom, r'class="f py"[^>]*title="make_str [^"]*\n[\d.]+ MiB exact \(')
        # the timeline: the heading, and a band for the 95% interval of the
        # stacked total
        dom, errors = self.render(self.report(traces[0], "timeline", ".html"))
        self.assertEqual(errors, [])
        self.assertIn("sampled every 16.0 KiB on average", dom)
        self.assertIn('class="band"', dom)

    def test_timeline_markers_ticks_and_groups(self):
        """The HTML timeline draws hw_mark()'s markers and Python's
        finalization as lines with their labels, readable time and size
        ticks, and the series grouped by line."""
        script = os.path.join(HERE, "py", "many_callers.py")
        _, _, traces = self.run_traced(["/usr/bin/python3.11", script])
        out = self.report(traces[0], "timeline", "--group-by", "line", ".html")
        dom, errors = self.render(out)
        self.assertEqual(errors, [])
        self.assertEqual(dom.count('<g class="mark">'), 3, dom[-3000:])
        for label in (">start<", ">done<", ">Python finalizes<"):
            self.assertIn(label, dom)
        self.assertRegex(dom, r">(0|100|200|250|300|400|500) ms</text>")
        self.assertRegex(dom, r">\d+ MiB</text>")
        self.assertIn("many_callers.py:13 work", dom)  # the line's series, in the legend

    def test_marks_in_the_last_bucket(self):
        """A mark at the trace's very end (Python's finalization, where the
        timeline's rounded bucket times end before it) is drawn, zoomed out."""
        out = self.report(os.path.join(GOLDEN, "endmark.hwt"), "timeline", ".html")
        dom, errors = self.render(out)
        self.assertEqual(errors, [])
        self.assertEqual(dom.count('<g class="mark">'), 2, dom[-3000:])
        self.assertIn(">Python finalizes<", dom)
        self.assertIn(">begin<", dom)

    def test_native_names_in_the_flamegraph(self):
        _, _, traces = self.run_traced([self.prog("leaks")])
        dom, errors = self.render(self.report(traces[0], "flamegraph", "--metric", "leaked",
                                              ".html"))
        self.assertEqual(errors, [])
        self.assertIn("leak_big", dom)

    def test_markup_in_names_is_text(self):
        trace = os.path.join(GOLDEN, "hostile.hwt")
        for args in (("flamegraph", ".html"), ("timeline", ".html")):
            dom, errors = self.render(self.report(trace, *args))
            self.assertEqual(errors, [], args)
            self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;.py", dom, args)
            self.assertNotIn("<img", dom, args)  # never parsed as an element
            self.assertNotIn("<script>alert", dom, args)



def drive(test, script, *args):
    """What tests/browser/SCRIPT saw of a page in headless chromium (its
    JSON), run with args and a fresh profile directory."""
    if not os.path.isdir(PUPPETEER):
        test.fail("puppeteer-core is not installed: run `npm ci` in tests/browser")
    profile = tempfile.mkdtemp(prefix="chr-", dir=test.dir)
    p = subprocess.run([NODE, os.path.join(DRIVER, script), *args, profile],
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, CHROMIUM=CHROMIUM))
    test.assertEqual(p.returncode, 0, p.stderr)
    return json.loads(p.stdout)


@unittest.skipUnless(CHROMIUM and NODE, "chromium and node are needed (Debian packages)")
class FlameGraphInteraction(TraceTest):
    """A 1400x900 window on the HTML flame graph of a deep stack: the first
    view shows the root; a click on a leaf draws its ancestors as one bar
    each above it, nothing else; a search counts nested matches once."""

    def test_first_view_zoom_and_search(self):
        script = os.path.join(HERE, "py", "deep.py")
        _, _, traces = self.run_traced(["/usr/bin/python3.11", script])
        page = os.path.join(self.dir, "f.html")
        self.heapwise("flamegraph", traces[0], "-o", page)
        folded = self.heapwise("flamegraph", traces[0], "-o", "-").stdout
        got = drive(self, "flame.js", page, "^rec ")
        self.assertEqual(got["errors"], [])
        first = got["first"]
        # the root and the search box are in the first view, unscrolled
        self.assertEqual(first["scrollY"], 0)
        self.assertGreaterEqual(first["root"]["top"], 0)
        self.assertLessEqual(first["root"]["bottom"], first["height"], first["root"])
        self.assertLessEqual(first["search"]["bottom"], first["height"])
        self.assertGreater(max(f["row"] for f in first["frames"]), 100)  # a deep stack
        # zoom on the deepest frame: one full-width bar per ancestor row,
        # the leaf full width on the row below, nothing else
        leaf = got["clicked"]
        rows = {}
        for f in got["zoom"]:
            rows.setdefault(f["row"], []).append(f)
        self.assertEqual(sorted(rows), list(range(leaf["row"] + 1)), "a row without its bar")
        for row, bars in sorted(rows.items()):
            self.assertEqual(len(bars), 1, f"row {row}: {[b['text'] for b in bars][:5]}")
            self.assertAlmostEqual(bars[0]["width"], first["chartWidth"], delta=1)
        self.assertEqual(rows[leaf["row"]][0]["text"], leaf["text"])
        # search: the bytes of the stacks with a matching frame, each once
        want = 0
        for line in folded.splitlines():
            stack, value = line.rsplit(" ", 1)
            if any(re.search("^rec ", f) for f in stack.split(";")):
                want += int(value)
        search = got["search"]
        self.assertGreater(want, 4_000_000)
        self.assertEqual(search["bytes"], want, search)
        self.assertLessEqual(search["bytes"], search["total"])
        self.assertRegex(search["text"], r"^matched [\d.]+ MiB of [\d.]+ MiB \([\d.]+%\)$")
        self.assertGreater(search["hits"], 100)  # every nested match is coloured


@unittest.skipUnless(CHROMIUM and NODE, "chromium and node are needed (Debian packages)")
class SampledInteraction(TraceTest):
    """A sampled trace's HTML reports under the mouse: the timeline gives
    each series under the mouse its 95% interval, and the flame graph's
    search the interval of the bytes it matched."""

    def test_values_under_the_mouse_have_their_intervals(self):
        script = os.path.join(HERE, "py", "deep.py")
        _, _, traces = self.run_traced(["/usr/bin/python3.11", script], "--sample", "16K")
        page = os.path.join(self.dir, "t.html")
        self.heapwise("timeline", traces[0], "-o", page)
        got = drive(self, "timeline.js", page)
        self.assertEqual(got["errors"], [])
        self.assertIn("sampled every 16.0 KiB", got["title"])
        self.assertEqual(got["bands"], 1)
        # "4.0 MiB ± 1.1 MiB (52 samples)  deep.py:12 rec" per series
        self.assertRegex(got["info"], r"\n[\d.]+ [KMG]?i?B \u00b1 [\d.]+ [KMG]?i?B \(\d+ samples(, unreliable)?\)  ")
        page = os.path.join(self.dir, "f.html")
        self.heapwise("flamegraph", traces[0], "-o", page)
        # "." matches the root's children: every byte, the interpreter's
        # small sampled blocks with them (deep.py's 4 MB block is exact)
        search = drive(self, "flame.js", page, ".")["search"]
        self.assertRegex(search["text"], r"^matched [\d.]+ [KMG]?i?B \u00b1 [\d.]+ [KMG]?i?B "
                                         r"\(\d+ samples(, unreliable)?\) of ")


if __name__ == "__main__":
    main()
