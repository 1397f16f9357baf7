"""No report shows two rows that read the same (issue 16's identical rows):
every report of the test programs and examples/, checked by rowcheck.py.
Its own runner: it makes some 150 reports."""
import json
import os

import rowcheck
from helpers import TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3.11"


class IdenticalRows(TraceTest):
    """No report of the test programs shows two rows that read the same:
    two bytecode offsets of one line show their columns (app.py:10:12 and
    app.py:10:13) or are one row, stacks that print the same are one row,
    and one-line lists (the summary's peak lines, check's lines, timeline
    legends) never repeat a line. Checked by rowcheck.py on every grouping
    of top (by peak and allocated) and leaks, summary, check, diff, timeline and export,
    lines, text and JSON, on Python programs (examples/ among them) and a C
    program whose inlined calls give two return addresses on one line."""

    def programs(self):
        py = os.path.join(HERE, "py")
        examples = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
        progs = [([PY, os.path.join(examples, "app.py"), "30000"], [], 0),
                 ([PY, os.path.join(examples, "growing_cache.py")], [], 0),
                 ([PY, os.path.join(examples, "cycles.py")], [], 0),
                 ([PY, os.path.join(py, "sizes.py")], [], 3),
                 ([PY, os.path.join(py, "shapes.py"), self.prog("nthread.so")], [], 0),
                 ([self.prog("inlined")], [], None)]
        return progs

    def reports(self, trace):
        """(name, fmt, output) of every report of one trace."""
        out = []
        for group in ("stack", "line", "function", "file"):
            for by in ("peak", "allocated"):
                args = ["top", trace, "--group-by", group, "--by", by, "-n", "40"]
                out.append((" ".join(args[2:]), "text", self.heapwise(*args).stdout))
            out.append((group + " --json", "json",
                        self.heapwise("top", trace, "--group-by", group, "--json").stdout))
            out.append(("leaks " + group, "text",
                        self.heapwise("leaks", trace, "--group-by", group, "-n", "40").stdout))
        out.append(("leaks --json", "json", self.heapwise("leaks", trace, "--json").stdout))
        out.append(("summary", "text", self.heapwise("summary", trace).stdout))
        out.append(("summary --json", "json", self.heapwise("summary", trace, "--json").stdout))
        out.append(("check", "text", self.heapwise("check", trace, "--max-peak", "1",
                                                   "--max-leaked", "1", status=None).stdout))
        out.append(("diff", "text", self.heapwise("diff", trace, trace, "-n", "40").stdout))
        out.append(("export", "json",
                    self.heapwise("export", trace, "--format", "json", "-o", "-").stdout))
        out.append(("lines", "text", self.heapwise("lines", trace, "--all", status=None).stdout))
        for n in ("20",):
            for ext, fmt in ((".csv", "csv"), (".json", "json")):
                path = os.path.join(self.dir, "t" + ext)
                self.heapwise("timeline", trace, "-n", n, "-o", path)
                with open(path, encoding="utf-8") as f:
                    out.append(("timeline -n " + n + ext, fmt, f.read()))
        return out

    def test_no_two_rows_read_the_same(self):
        found = []
        for args, flags, status in self.programs():
            _, err, traces = self.run_traced(args, *flags, check_status=status)
            self.assertTrue(traces, err)
            for name, fmt, output in self.reports(traces[0]):
                found += [f"{os.path.basename(args[-1])} {' '.join(flags)} {name}: {d}"
                          for d in rowcheck.duplicates(output, fmt)]
        self.assertEqual(found, [], "\n".join(found[:20]))

    def test_the_checker_finds_identical_rows(self):
        """The checker itself: a table, peak lines, check's lines, legends
        and JSON rows that repeat are found; distinct ones are not."""
        table = ("    #  PEAK        LEAKED      ALLOCATED   COUNT      KIND\n"
                 "    1  1.0 MiB     0 B         1.0 MiB     1          pyobj\n"
                 "         app.py:10 f\n         app.py:20 <module>\n"
                 "    2  1.0 MiB     0 B         1.0 MiB     1          pymem\n"
                 "         app.py:10 f\n         app.py:20 <module>\n"
                 "    3  1.0 MiB     0 B         1.0 MiB     1          mmap\n"
                 "         app.py:10 f\n         app.py:20 <module>\n")
        self.assertEqual(len(rowcheck.duplicates(table)), 1)
        self.assertEqual(rowcheck.duplicates(table.replace("pymem\n         app.py:10 f",
                                                           "pymem\n         app.py:10:3 f")), [])
        peaks = ("  at the peak (heap live at 1.0 s, largest lines):\n"
                 "    11.3 MiB   app.py:10 f\n    1.5 MiB    app.py:10 f\n\n")
        self.assertEqual(len(rowcheck.duplicates(peaks)), 1)
        check = ("    top leaking lines:\n      7.6 MiB    in 4 blocks  app.py:3 f\n"
                 "      400 B      in 1 block   app.py:3 f\n")
        self.assertEqual(len(rowcheck.duplicates(check)), 1)
        self.assertEqual(len(rowcheck.duplicates('time_s,rss_bytes,"a:1 f","a:1 f"\n', "csv")), 1)
        doc = {"callsites": [{"kind": "malloc", "frames": [{"line": 1}]},
                             {"kind": "pyobj", "frames": [{"line": 1}]}]}
        self.assertEqual(len(rowcheck.duplicates(json.dumps(doc), "json")), 1)


if __name__ == "__main__":
    main()
