"""The HTML reports in a real browser (Debian's chromium, headless): the page
renders the expected names, no script error happens, and names that are markup
in a trace render as text."""
import os
import shutil
import subprocess
import tempfile
import unittest

from helpers import TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(HERE), "golden")
CHROMIUM = shutil.which("chromium")


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


if __name__ == "__main__":
    main()
