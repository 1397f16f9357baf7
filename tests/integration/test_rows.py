"""No report shows two rows that read the same (issue 16's identical rows):
every report of the test programs and examples/, checked by rowcheck.py.
Its own runner: it makes some 150 reports."""
import json
import os
from concurrent.futures import ThreadPoolExecutor

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
        """(name, fmt, make) of every report of one trace: make() runs it and
        returns its output."""
        out = []

        def report(name, fmt, *args, status=0):
            out.append((name, fmt, lambda: self.heapwise(*args, status=status).stdout))

        for group in ("stack", "line", "function", "file"):
            for by in ("peak", "allocated"):
                args = ["top", trace, "--group-by", group, "--by", by, "-n", "40"]
                report(" ".join(args[2:]), "text", *args)
            report(group + " --json", "json", "top", trace, "--group-by", group, "--json")
            report("leaks " + group, "text", "leaks", trace, "--group-by", group, "-n", "40")
        report("leaks --json", "json", "leaks", trace, "--json")
        report("summary", "text", "summary", trace)
        report("summary --json", "json", "summary", trace, "--json")
        report("check", "text", "check", trace, "--max-peak", "1", "--max-leaked", "1",
               status=None)
        report("diff", "text", "diff", trace, trace, "-n", "40")
        report("export", "json", "export", trace, "--format", "json", "-o", "-")
        report("lines", "text", "lines", trace, "--all", status=None)
        for ext, fmt in ((".csv", "csv"), (".json", "json")):
            def timeline(ext=ext):
                path = os.path.join(os.path.dirname(trace), "timeline" + ext)
                self.heapwise("timeline", trace, "-n", "20", "-o", path)
                with open(path, encoding="utf-8") as f:
                    return f.read()
            out.append(("timeline -n 20" + ext, fmt, timeline))
        return out

    def test_no_two_rows_read_the_same(self):
        """Each program is traced once and all its reports made from that
        trace, two commands at a time (each reads the trace on its own)."""
        progs = self.programs()
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda p: self.run_traced(p[0], *p[1], check_status=p[2]),
                                 progs))
            jobs = []
            for (args, flags, _), (_, err, traces) in zip(progs, runs):
                self.assertTrue(traces, err)
                who = f"{os.path.basename(args[-1])} {' '.join(flags)}"
                jobs += [(who, name, fmt, make) for name, fmt, make in self.reports(traces[0])]
            outputs = list(pool.map(lambda job: job[3](), jobs))
        found = []
        for (who, name, fmt, _), output in zip(jobs, outputs):
            found += [f"{who} {name}: {d}" for d in rowcheck.duplicates(output, fmt)]
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
