"""Reports people look at, on real traces: pprof decodes (protoc, and a wire
parser here) with the right totals; folded stacks add up to the summary."""
import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess

from helpers import HEAPWISE, TraceTest, main

PY = "/usr/bin/python3.11"
HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(HERE), "golden")
XMLLINT = shutil.which("xmllint")
GO = shutil.which("go")


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def fields(buf):
    """(field, wire type, value) of one protobuf message."""
    i, out = 0, []
    while i < len(buf):
        key, i = varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wt}")
        out.append((f, wt, v))
    return out


def packed(buf):
    i, out = 0, []
    while i < len(buf):
        v, i = varint(buf, i)
        out.append(v)
    return out


class Reports(TraceTest):
    def test_sampled_pprof_says_so(self):
        """A sampled trace's profile says so as Go's heap profiles do: the
        period type space/bytes, the period the mean interval, and comments
        (`go tool pprof -comments`) with the note and the 95% intervals of
        the inuse and alloc totals, as the summary prints them."""
        # spread keeps 1.3 MB of 64-byte blocks to its end: many samples
        _, _, traces = self.run_traced([self.prog("spread")], "--sample", "16K")
        out = os.path.join(self.dir, "p.pb.gz")
        self.heapwise("export", traces[0], "--format", "pprof", "-o", out)
        top = fields(gzip.open(out).read())
        strings = [v.decode() for f, wt, v in top if f == 6]
        self.assertEqual([v for f, wt, v in top if f == 12], [16384])
        ptype = fields(next(v for f, wt, v in top if f == 11))
        self.assertEqual([strings[x[2]] for x in ptype], ["space", "bytes"])
        comments = [strings[v] for f, wt, v in top if f == 13]
        self.assertIn("sampled every 16.0 KiB on average", comments[0])
        summary = self.heapwise("summary", traces[0]).stdout
        leaked = re.search(r"leaked +(\S+ \S+ \u00b1 \S+ \S+ \(\d+ samples\))", summary)
        self.assertTrue(leaked, summary)
        self.assertEqual(comments[1], f"inuse_space (live at the leak point): {leaked.group(1)}, "
                                      "95% interval")
        self.assertRegex(comments[2], r"^alloc_space: \S+ \S+ \u00b1 \S+ \S+ \(\d+ samples")
        if GO:
            p = subprocess.run([GO, "tool", "pprof", "-raw", out], capture_output=True, text=True,
                               timeout=300, env=go_env(self.dir))
            self.assertIn("Period: 16384", p.stdout, p.stderr)
            self.assertIn("Comment: inuse_space (live at the leak point): ", p.stdout)
        # an exact trace: no period, no comment
        _, _, traces = self.run_traced([self.prog("leaks")])
        self.heapwise("export", traces[0], "--format", "pprof", "-o", out)
        top = fields(gzip.open(out).read())
        self.assertEqual([v for f, wt, v in top if f in (12, 13)], [])

    def test_pprof_totals(self):
        _, _, traces = self.run_traced([self.prog("leaks")])
        out = os.path.join(self.dir, "p.pb.gz")
        self.heapwise("export", traces[0], "--format", "pprof", "-o", out)
        raw = gzip.open(out).read()
        top = fields(raw)
        strings = [v.decode() for f, wt, v in top if f == 6]
        self.assertEqual(strings[0], "")
        types = [fields(v) for f, wt, v in top if f == 1]
        self.assertEqual([strings[t[0][2]] for t in types],
                         ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"])
        sums = [0, 0, 0, 0]
        for f, wt, v in top:
            if f == 2:
                vals = next(packed(x) for ff, _, x in fields(v) if ff == 2)
                sums = [a + b for a, b in zip(sums, vals)]
        s = self.json("summary", traces[0])
        self.assertEqual(sums[0], s["allocations"])
        self.assertEqual(sums[1], s["allocated_bytes"])
        self.assertEqual(sums[2], s["leaked_blocks"])
        self.assertEqual(sums[3], s["leaked_bytes"])
        functions = {strings[dict((ff, x) for ff, _, x in fields(v))[2]]
                     for f, wt, v in top if f == 5}
        self.assertIn("leak_big", functions)
        if shutil.which("protoc"):
            r = subprocess.run(["protoc", "--decode_raw"], input=raw, capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_folded_adds_up(self):
        _, _, traces = self.run_traced([self.prog("leaks")])
        s = self.json("summary", traces[0])
        for metric, field in (("peak", "peak_bytes"), ("leaked", "leaked_bytes"),
                              ("allocated", "allocated_bytes")):
            p = self.heapwise("flamegraph", traces[0], "--metric", metric, "-o", "-")
            total = sum(int(line.rsplit(" ", 1)[1]) for line in p.stdout.splitlines())
            self.assertEqual(total, s[field], metric)
        p = self.heapwise("flamegraph", traces[0], "--metric", "leaked", "-o", "-")
        self.assertTrue(any(l.split(" ")[0].endswith("leak_big (leaks)") or
                            ";leak_big (leaks)" in l for l in p.stdout.splitlines()), p.stdout)

    def test_timeline_keeps_a_short_spike(self):
        script = os.path.join(os.path.dirname(__file__), "py", "spike.py")
        _, _, traces = self.run_traced([PY, script])
        out = os.path.join(self.dir, "t.json")
        self.heapwise("timeline", traces[0], "-n", "5", "-o", out)
        import json
        with open(out) as f:
            doc = json.load(f)
        self.assertEqual(doc["version"], 1)
        n = len(doc["times_s"])
        self.assertEqual(len(doc["rss_bytes"]), n)
        for s in doc["series"]:
            self.assertEqual(len(s["live_bytes"]), n)
        spike = [s for s in doc["series"] if s["callsite"]["frames"]
                 and s["callsite"]["frames"][0]["function"] == "spike"]
        self.assertEqual(len(spike), 1, [s["callsite"]["frames"][:1] for s in doc["series"]])
        values = spike[0]["live_bytes"]
        top = max(values)
        self.assertGreaterEqual(top, 5_000_000)
        at = values.index(top)
        self.assertGreater(at, n // 10)  # after the first slow phase
        self.assertEqual(values[-1], 0)  # and it falls
        self.assertLess(sum(1 for v in values if v >= 5_000_000), n // 4)
        csv = os.path.join(self.dir, "t.csv")
        self.heapwise("timeline", traces[0], "-o", csv)
        with open(csv) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), n + 1)
        self.assertTrue(lines[0].startswith("time_s,rss_bytes,"))
        self.heapwise("timeline", traces[0], "-o", os.path.join(self.dir, "t.png"), status=2)

    def test_timeline_series_by_line_and_marks(self):
        """80 stacks reach one line: grouped by stack, 8 series and the rest
        as "other"; grouped by line, one series holds it all. hw_mark()'s
        markers and Python's finalization are in the document."""
        script = os.path.join(os.path.dirname(__file__), "py", "many_callers.py")
        _, _, traces = self.run_traced([PY, script])
        docs = {}
        for group in ("stack", "line", "function", "file"):
            out = os.path.join(self.dir, f"t-{group}.json")
            self.heapwise("timeline", traces[0], "--group-by", group, "-o", out)
            with open(out) as f:
                docs[group] = json.load(f)
            self.assertEqual(docs[group]["group_by"], group)
        peak = lambda s: max(s["live_bytes"])
        other = lambda d: next(s for s in d["series"] if s["callsite"].get("other"))
        by_stack, by_line = docs["stack"], docs["line"]
        self.assertGreater(peak(other(by_stack)), 4_000_000)  # 70 of 80 stacks
        first = by_line["series"][0]
        # 3.11 runs a comprehension as a function of its own: the line's bytes are
        # in work.<locals>.<listcomp>, and a row by line names that function
        self.assertRegex(first["label"], r"many_callers\.py:13 work(\.<locals>\.<listcomp>)?$")
        self.assertGreater(peak(first), 7_500_000)
        self.assertLess(peak(other(by_line)), 1_000_000)
        self.assertIn("work", docs["function"]["series"][0]["label"])
        self.assertTrue(docs["file"]["series"][0]["label"].endswith("many_callers.py"))
        # (the garbage collector's marks come and go with the interpreter's collections)
        marks = [m for m in by_line["marks"] if not m["kind"].startswith("gc-")]
        self.assertEqual([(m["kind"], m["label"]) for m in marks],
                         [("mark", "start"), ("mark", "done"),
                          ("python-finalize", "python-finalize")])
        times = [m["time_s"] for m in marks]
        self.assertEqual(times, sorted(times))
        self.assertLess(times[-1], by_line["times_s"][-1] + 0.1)
        self.assertGreater(times[1] - times[0], 0.1)  # 80 sleeps of 2 ms
        # the SVG draws them, with time and size ticks
        svg = os.path.join(self.dir, "t.svg")
        self.heapwise("timeline", traces[0], "--group-by", "line", "-o", svg)
        with open(svg) as f:
            text = f.read()
        self.assertEqual(text.count('<g class="mark">'), 3)
        self.assertIn(">Python finalizes</text>", text)
        self.assertRegex(text, r">(0|100|200|300|400|500) ms</text>")
        self.assertRegex(text, r">\d+ MiB</text>")
        self.heapwise("timeline", traces[0], "--group-by", "kind", "-o", svg, status=2)

    def test_python_pprof_has_python_lines(self):
        script = os.path.join(os.path.dirname(__file__), "py", "sizes.py")
        _, _, traces = self.run_traced([PY, script], check_status=3)
        out = os.path.join(self.dir, "py.pb.gz")
        self.heapwise("export", traces[0], "--format", "pprof", "-o", out)
        top = fields(gzip.open(out).read())
        strings = [v.decode() for f, wt, v in top if f == 6]
        self.assertIn("make_str", strings)
        self.assertIn(script, strings)
        self.heapwise("export", traces[0], "--format", "pprof", "-o", "-", status=2)

    def test_diff_rows_add_up_to_the_headline(self):
        """Two stacks whose frames print the same (two calls on one line)
        are one diff row, and the rows add up to the headline: before, the
        second was dropped (a bytearray that grew from 16 bytes to 8 MB
        vanished from the rows while the headline said +8 MB)."""
        script = os.path.join(HERE, "py", "grow.py")
        _, _, base = self.run_traced([PY, script, "8000000", "16"])
        _, _, new = self.run_traced([PY, script, "8000000", "8000000"])
        doc = self.json("diff", base[0], new[0], "-n", "1000000")
        rows = [c for c in doc["callsites"] if c["class"] == "heap"]
        self.assertEqual(doc["heap_callsites_not_shown"]["count"], 0)
        for metric in ("peak_bytes", "leaked_bytes", "allocated_bytes"):
            self.assertEqual(sum(c["delta"][metric] for c in rows),
                             doc[metric]["new"] - doc[metric]["base"], metric)
        with open(script) as f:
            line = next(i for i, l in enumerate(f, 1) if "LINE-TWO" in l)
        two = [c for c in rows if c["frames"] and c["frames"][0]["line"] == line and
               c["frames"][0]["file"] == script]
        self.assertEqual(len(two), 1, two)
        self.assertGreaterEqual(two[0]["delta"]["allocated_bytes"], 8_000_000 - 16)
        self.assertGreaterEqual(two[0]["new"]["allocated_bytes"], 16_000_000)
        # with -n 1 the rest is summed on a line of its own
        doc = self.json("diff", base[0], new[0], "-n", "1")
        rest = doc["heap_callsites_not_shown"]
        shown = sum(c["delta"]["allocated_bytes"] for c in doc["callsites"] if c["class"] == "heap")
        self.assertEqual(shown + rest["delta"]["allocated_bytes"],
                         doc["allocated_bytes"]["new"] - doc["allocated_bytes"]["base"])
        text = self.heapwise("diff", base[0], new[0], "-n", "1").stdout
        self.assertIn(f"... {rest['count']} more heap callsites (-n shows more)", text)

    def test_leaks_rows_have_the_line_s_whole_figures(self):
        """leaks grouped by line, function or file picks the rows that
        leaked, and each row's ALLOCATED and COUNT are the whole line's
        (function's, file's), as top shows them: before, only the stacks
        that leaked were summed (sqlite3's executemany line: 75.8 MiB and
        302,906 allocations in leaks, 84.2 MiB and 502,657 in top). Here
        line 3 keeps a small bytes (pymalloc) and frees a large one
        (malloc) each time round: leaks showed the small ones only."""
        script = self.script("leak_part.py", "KEEP = []\n"
                             "for i in range(2000):\n"
                             "    KEEP.append(bytes(100)); t = bytes(100000); del t\n")
        _, _, traces = self.run_traced([PY, script])
        for group in ("line", "function", "file"):
            def rows(cmd):
                doc = self.json(cmd, traces[0], "--group-by", group, "-n", "1000000")
                return [c for c in doc["callsites"] if c["frames"] and
                        c["frames"][0]["file"] == script and
                        c["frames"][0]["line"] in (None, 3)]
            leaks, top = rows("leaks"), rows("top")
            self.assertTrue(leaks and all(c["leaked_bytes"] for c in leaks), (group, leaks))
            for metric in ("allocated_bytes", "count"):
                self.assertEqual(sum(c[metric] for c in leaks),
                                 sum(c[metric] for c in top if c["leaked_bytes"]),
                                 (group, metric))
            self.assertGreater(sum(c["allocated_bytes"] for c in leaks), 2000 * 100000, group)

    def test_diff_by_line_joins_a_line_named_apart(self):
        """diff --group-by line keys a row by file:line: a comprehension's
        line is one row between 3.11 (temp.<locals>.<listcomp>) and 3.12+
        (inlined: temp), naming the base's function beside the new's
        where they differ. Before, keep.py:12 was +60 MiB [new] and
        -60 MiB [gone]."""
        new_py = next((p for p in ("/root/.pyenv/versions/3.13.0/bin/python3.13",
                                   "/root/.pyenv/versions/3.12.1/bin/python3.12")
                       if os.path.exists(p)), None)
        if not new_py:
            self.skipTest("no Python 3.12+ beside 3.11")
        script = self.script("comp.py", "KEEP = []\n"
                             "def temp():\n"
                             "    big = [bytearray(1 << 20) for _ in range(20)]\n"
                             "    return len(big)\n"
                             "temp()\n")
        _, _, base = self.run_traced([PY, script])
        _, _, new = self.run_traced([new_py, script])
        doc = self.json("diff", base[0], new[0], "--group-by", "line", "-n", "1000000")
        line3 = [c for c in doc["callsites"] if c["frames"] and
                 c["frames"][0]["file"] == script and c["frames"][0]["line"] == 3]
        self.assertEqual(len(line3), 1, line3)
        row = line3[0]
        self.assertIsNotNone(row["base"])
        self.assertIsNotNone(row["new"])
        self.assertGreaterEqual(row["base"]["allocated_bytes"], 20 << 20)
        self.assertLess(abs(row["delta"]["allocated_bytes"]), 1 << 20)
        self.assertEqual(row["frames"][0]["function"], "temp")
        self.assertEqual(row["base_function"], "temp.<locals>.<listcomp>")
        text = self.heapwise("diff", base[0], new[0], "--group-by", "line",
                             "-n", "1000000").stdout
        mine = [l for l in text.splitlines() if f"{script}:3 " in l]
        self.assertEqual(len(mine), 1, mine)
        self.assertIn(f"{script}:3 temp (base: temp.<locals>.<listcomp>)", mine[0])
        self.assertNotIn("[new]", mine[0])

    def test_python_loaded_after_start_is_said_not_traced(self):
        """A program that dlopen's libpython with RTLD_LOCAL runs Python
        the shim cannot find (its symbols are not global): the summary
        (text and JSON) and check say that Python was loaded after start
        and its frames and pymalloc objects were not traced. Before, no
        python line, no note, and check judged the trace natively
        without a word. (RTLD_GLOBAL: test_python.py Embedded.)"""
        status, err, traces = self.run_traced([self.prog("pyembed"), "libpython3.11.so.1.0",
                                               "local"], check_status=None)
        if status == 3:
            self.skipTest(f"no libpython3.11.so.1.0 to load: {err.strip()}")
        self.assertEqual(status, 0, err)
        want = ("libpython3.11.so.1.0 was loaded after start (dlopen) without RTLD_GLOBAL, "
                "where the shim cannot find it: its Python frames and pymalloc objects were "
                "not traced, so the Python figures are missing")
        text = self.heapwise("summary", traces[0]).stdout
        self.assertIn("  python      NOT TRACED: " + want, text)
        doc = self.json("summary", traces[0])
        self.assertFalse(doc["python"])
        self.assertIn(want, doc["python_not_traced"])
        check = self.heapwise("check", traces[0], "--max-leaked", "100M").stdout
        self.assertIn("  note: Python not traced: " + want, check)
        # a Python traced from the start says nothing of the kind
        script = self.script("plain.py", "x = [bytes(10) for _ in range(10)]\n")
        _, _, plain = self.run_traced([PY, script])
        self.assertNotIn("python_not_traced", self.json("summary", plain[0]))
        self.assertNotIn("NOT TRACED", self.heapwise("summary", plain[0]).stdout)

    def test_pymalloc_arenas_are_not_recorded(self):
        """README: pymalloc's arenas are not recorded (they are mapped
        inside the hooked calls, under the guard; the sampling mode wraps
        the arena allocator): 300,000 objects (about 5 MiB of 1 MiB
        arenas) are pyobj blocks, and the mmap row has no arena, exact
        and sampled."""
        script = self.script("objs.py", "K = [object() for _ in range(300000)]\n")
        for flags in ((), ("--sample", "64K")):
            _, _, traces = self.run_traced([PY, script], *flags)
            kinds = self.json("summary", traces[0])["kinds"]
            self.assertGreater(kinds["pyobj"]["allocations"], 250000, flags)
            self.assertLess(kinds["mmap"]["allocated_bytes"], 1 << 20, (flags, kinds["mmap"]))

    def test_kind_is_the_kind_that_holds_the_bytes(self):
        """A NumPy array is a small object (pyobj) and its data (malloc) on one
        line: the row says malloc, with each kind's part, in text, JSON and
        the flame graph's tooltip (before: KIND was the first allocation's,
        pyobj, and the 8 MB of malloc were not visible as such). The
        summary's allocator table gives each kind's share of the heap's
        peak (before: the malloc row showed the whole heap's peak, more than
        malloc ever allocated)."""
        if subprocess.run([PY, "-c", "import numpy"], capture_output=True).returncode:
            self.skipTest("python3-numpy is not installed")
        script = os.path.join(HERE, "py", "numpy_line.py")
        _, _, traces = self.run_traced([PY, script])
        doc = self.json("top", traces[0], "-n", "1000000")
        # the array's row (ones' next line has small objects of its own:
        # tuples and dicts that CPython's free lists no longer hide)
        rows = [c for c in doc["callsites"] if any(
            f["kind"] == "python" and f["file"] == script and f["function"] == "build"
            for f in c["frames"]) and c["frames"][0]["function"] == "ones"
            and c["allocated_bytes"] >= 8_000_000]
        self.assertEqual(len(rows), 1, [c["frames"][:2] for c in doc["callsites"][:5]])
        row = rows[0]
        self.assertEqual(row["kind"], "malloc")
        self.assertGreaterEqual(row["kinds"]["malloc"]["allocated_bytes"], 8_000_000)
        self.assertIn("pyobj", row["kinds"])
        self.assertLess(row["kinds"]["pyobj"]["allocated_bytes"], 10_000)
        for field in ("peak_bytes", "leaked_bytes", "allocated_bytes", "count"):
            self.assertEqual(sum(k[field] for k in row["kinds"].values()), row[field], field)
        text = self.heapwise("top", traces[0], "-n", "3").stdout
        self.assertRegex(text, r"\n +1 +7\.\d MiB .* malloc\+pyobj\n +\S*numpy_line\.py:\d+ build\n"
                               r"(.*\n)*? +library frames it called:\n +\S*numeric\.py:\d+ ones\n")
        folded_page = os.path.join(self.dir, "f.html")
        self.heapwise("flamegraph", traces[0], "-o", folded_page)
        with open(folded_page, encoding="utf-8") as f:
            page = f.read()
        self.assertRegex(page, r'"n":"ones \([^"]*numeric\.py:\d+\)","v":\d+,"p":1,"k":"malloc [\d.]+ MiB \+ pyobj')
        # each kind's share of the heap's peak adds up to it
        s = self.json("summary", traces[0])
        heap = ("malloc", "pymem", "pyobj")
        self.assertEqual(sum(s["kinds"][k]["live_at_peak_bytes"] for k in heap), s["peak_bytes"])
        for k in heap:
            self.assertLessEqual(s["kinds"][k]["live_at_peak_bytes"], s["kinds"][k]["allocated_bytes"])
        table = self.heapwise("summary", traces[0]).stdout.split("allocator")[1]
        units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
        for line in table.splitlines():
            m = re.match(r"  (\w+) +\d+ +([\d.]+) (\w+) +([\d.]+) (\w+) ", line)
            if m and m.group(1) in heap:
                allocated = float(m.group(2)) * units[m.group(3)]
                at_peak = float(m.group(4)) * units[m.group(5)]
                self.assertLessEqual(at_peak, allocated, line)

    def test_go_tool_pprof_keeps_python_names(self):
        """go tool pprof strips <...> from names it takes for demangled C++:
        <module> and <listcomp> showed as <unknown>. Each Python function
        now has a system name of its own (FILE:QUALNAME), which pprof
        leaves alone."""
        if not GO:
            self.skipTest("go is not installed (Debian package golang-go)")
        script = os.path.join(HERE, "py", "pprof_names.py")
        _, _, traces = self.run_traced([PY, script])
        out = os.path.join(self.dir, "n.pb.gz")
        self.heapwise("export", traces[0], "--format", "pprof", "-o", out)
        p = subprocess.run([GO, "tool", "pprof", "-top", "-nodecount=1000",
                            "-sample_index=alloc_space", out], capture_output=True, text=True,
                           timeout=300, env=go_env(self.dir))
        self.assertEqual(p.returncode, 0, p.stderr)
        names = {line.split()[-1] for line in p.stdout.splitlines() if "%" in line}
        self.assertIn("<module>", names, p.stdout)
        self.assertIn("<listcomp>", names, p.stdout)
        self.assertNotIn("<unknown>", names, p.stdout)
        # the list comprehension's 3 MB are its own, the 2 MB bytearray <module>'s
        flat = {}
        for line in p.stdout.splitlines():
            m = re.match(r"\s*([\d.]+)(MB|kB|B)\s.*\s(\S+)$", line)
            if m:
                flat[m.group(3)] = float(m.group(1)) * {"MB": 1e6, "kB": 1e3, "B": 1}[m.group(2)]
        self.assertGreaterEqual(flat["<listcomp>"], 2_900_000, p.stdout)
        self.assertGreaterEqual(flat["<module>"], 1_900_000, p.stdout)

    def test_grouped_rows_name_what_holds_the_bytes(self):
        """By line, a row names the function that holds the line's bytes
        (the <listcomp>, as the summary does; before: <module>, whichever
        part came first); by function and by file, the text names no line
        (before: "names.py:0 <listcomp>", "names.py:0 ??")."""
        script = os.path.join(HERE, "py", "pprof_names.py")
        _, _, traces = self.run_traced([PY, script])
        doc = self.json("top", traces[0], "--group-by", "line", "-n", "1000000")
        line3 = [c for c in doc["callsites"] if c["frames"] and
                 c["frames"][0]["file"] == script and c["frames"][0]["line"] == 3]
        self.assertEqual([c["frames"][0]["function"] for c in line3], ["<listcomp>"])
        summary = self.json("summary", traces[0])
        inner = [next((f for f in c["frames"] if f["kind"] == "python"), {})
                 for c in summary["peak"]["callsites"]]
        self.assertIn(("<listcomp>", 3), [(f["function"], f["line"]) for f in inner
                                          if f.get("file") == script])
        labels = {}
        for group in ("function", "file"):
            text = self.heapwise("top", traces[0], "--group-by", group, "-n", "1000").stdout
            labels[group] = [l.strip() for l in text.splitlines() if l.startswith("         ")]
            self.assertEqual([l for l in labels[group] if ":0 " in l or l.endswith("??")], [],
                             group)
        self.assertIn(f"{script} <listcomp>", labels["function"])
        self.assertIn(f"{script} <module>", labels["function"])
        self.assertIn(script, labels["file"])

    def test_top_text_prints_the_frames_json_lists(self):
        """`top` text names only the frames it prints and counts the rest: its
        frames are JSON's from the innermost Python frame (8 of them) and the
        native frames below it, and "N more frames" counts the stack entries
        past them (one per return address)."""
        script = os.path.join(os.path.dirname(__file__), "py", "sizes.py")
        _, _, traces = self.run_traced([PY, script], "--native", check_status=3)
        text = self.heapwise("top", traces[0], "-n", "5").stdout
        doc = self.json("top", traces[0], "-n", "5")
        blocks = [r for r in text.split("\n") if r.startswith("  ") and r[2:5].strip().isdigit()]
        self.assertEqual(len(blocks), len(doc["callsites"]), text)
        lines = text.split("\n")
        starts = [i for i, l in enumerate(lines) if l in blocks] + [len(lines)]
        longest = 0
        for k, c in enumerate(doc["callsites"]):
            body = lines[starts[k] + 1:starts[k + 1]]
            frames = c["frames"]
            py = next((i for i, f in enumerate(frames) if f["kind"] == "python"), 0)
            printed = frames[py:py + 8]
            outer = [l.strip() for l in body if l.startswith("         ") and
                     not l.startswith("          ") and "more frames" not in l and
                     "native frames below" not in l and "(no stack recorded)" not in l]
            self.assertEqual(len(outer), len(printed), body)
            for line, f in zip(outer, printed):
                self.assertIn(f["function"] or "??", line)
                if f["kind"] == "python":
                    self.assertIn(f'{f["file"]}:{f["line"]}', line)
            # the entries past the printed frames: the rest of the return
            # address the last printed frame belongs to, then one per entry
            j = py + 8
            while 0 < j < len(frames) and frames[j]["kind"] == "native" and \
                    frames[j].get("address") == frames[j - 1].get("address") and \
                    frames[j]["module"] == frames[j - 1]["module"]:
                j += 1
            entries, prev = max(j - py - 8, 0), None
            for f in frames[j:]:
                key = (f["module"], f.get("address")) if f["kind"] == "native" else None
                if key is None or key != prev:
                    entries += 1
                prev = key
            more = [l for l in body if "more frames (--json shows all)" in l]
            if entries:
                self.assertEqual(more, [f"         ... {entries} more frames (--json shows all)"])
            else:
                self.assertEqual(more, [])
            longest = max(longest, entries)
        self.assertGreater(longest, 0, "no stack was longer than the text shows")


def pprof_strings(path):
    top = fields(gzip.open(path).read())
    return [v.decode("utf-8") for f, wt, v in top if f == 6]  # strict UTF-8


class Lines(TraceTest):
    """heapwise lines: the program's source with each line's figures, which
    are top --group-by line's; control bytes in the source escaped in text,
    markup in it escaped in HTML; a source file that became a FIFO is not
    opened (the command ends, saying so)."""

    SOURCE = ("import json  # \x1b[31mred</td><script>alert(1)</script>\n"
              "def make(n):\n"
              "\treturn [str(i) * 10 for i in range(n)]\n"
              "keep = make(50000)\n"
              "tmp = bytearray(4 << 20)\n"
              "del tmp\n"
              "data = json.loads('[' + ','.join(['1.5'] * 100000) + ']')\n")

    def trace(self, *flags):
        src = os.path.join(self.dir, "lines_prog.py")
        with open(src, "w", encoding="utf-8") as f:
            f.write(self.SOURCE)
        _, err, traces = self.run_traced([PY, src], *flags)
        self.assertTrue(traces, err)
        return src, traces[0]

    def test_a_sampled_trace_says_so(self):
        """lines of a sampled trace says it is sampled and at what
        interval, in text, JSON and HTML (an exact one's JSON has null)."""
        src, trace = self.trace("--sample", "16K")
        note = "sampled every 16.0 KiB on average (Poisson, by bytes)"
        text = self.heapwise("lines", trace, src).stdout
        self.assertIn(note, text.splitlines()[2])
        self.assertIn("PEAK \u00b1", text)
        self.assertEqual(json.loads(self.heapwise("lines", trace, "--json").stdout)
                         ["sample_interval"], 16384)
        out = os.path.join(self.dir, "l.html")
        self.heapwise("lines", trace, "-o", out)
        with open(out, encoding="utf-8") as f:
            self.assertIn(note, f.read())
        _, exact = self.trace()
        self.assertIsNone(json.loads(self.heapwise("lines", exact, "--json").stdout)
                          ["sample_interval"])
        self.assertNotIn("sampled every", self.heapwise("lines", exact, src).stdout)

    def test_figures_are_top_by_line(self):
        src, trace = self.trace()
        doc = json.loads(self.heapwise("lines", trace, "--json").stdout)
        top = json.loads(self.heapwise("top", trace, "--group-by", "line", "-n", "1000000",
                                       "--json").stdout)
        want = {}
        for c in top["callsites"]:
            fr = c["frames"][0] if c["frames"] else None
            if not fr or fr["kind"] != "python":
                continue
            w = want.setdefault((fr["file"], fr["line"]), [0, 0, 0, 0])
            for i, k in enumerate(("allocated_bytes", "peak_bytes", "leaked_bytes", "count")):
                w[i] += c[k]
        got = {}
        for f in doc["files"]:
            for ln in f["lines"]:
                got[(f["file"], ln["line"])] = [ln["allocated_bytes"], ln["peak_bytes"],
                                                ln["leaked_bytes"], ln["count"]]
        self.assertEqual({f for f, _ in got}, {src})  # the user's file only, by default
        self.assertEqual(got, {k: v for k, v in want.items() if k[0] == src})
        # a library's file when named: its figures too
        lib = next(f for f, _ in want if f.startswith("<frozen"))
        named = json.loads(self.heapwise("lines", trace, lib, "--json").stdout)
        self.assertEqual({(lib, ln["line"]): [ln["allocated_bytes"], ln["peak_bytes"],
                                              ln["leaked_bytes"], ln["count"]]
                          for ln in named["files"][0]["lines"]},
                         {k: v for k, v in want.items() if k[0] == lib})
        mine = {ln["line"]: ln for f in doc["files"] if f["file"] == src for ln in f["lines"]}
        self.assertGreater(mine[3]["allocated_bytes"], 50000 * 50)  # the strings, on the user's line
        self.assertGreaterEqual(mine[5]["allocated_bytes"], 4 << 20)  # the bytearray
        self.assertLess(mine[5]["leaked_bytes"], 4 << 20)
        self.assertGreater(mine[7]["leaked_bytes"], 100000 * 24)  # json.loads: the user's line
        self.assertEqual(mine[3]["source"], " " * 8 + "return [str(i) * 10 for i in range(n)]")  # tab stops of 8
        # only the named file, found by the end of its path
        named = json.loads(self.heapwise("lines", trace, "lines_prog.py", "--json").stdout)
        self.assertEqual([f["file"] for f in named["files"]], [src])

    def test_source_is_escaped(self):
        src, trace = self.trace()
        text = self.heapwise("lines", trace, src).stdout
        self.assertNotIn("\x1b", text)
        self.assertIn("\\x1b[31mred", text)
        self.assertNotIn("\t", text)
        rows = [ln for ln in text.splitlines() if re.match(r"^ +[0-9]+  ", ln)]
        self.assertEqual(len(rows), 7, text)  # a short file: every line, dim or not
        out = os.path.join(self.dir, "l.html")
        self.heapwise("lines", trace, "-o", out)
        with open(out, encoding="utf-8") as f:
            html = f.read()
        self.assertNotIn("<script>alert", html)
        self.assertIn("&lt;/td&gt;&lt;script&gt;alert(1)", html)
        self.assertNotIn("<script", html)  # the page has no script of its own
        self.assertEqual(html.count("<tr"), html.count("</tr>"))
        self.assertEqual(html.count("<td"), html.count("</td>"))

    def test_a_fifo_is_not_opened(self):
        src, trace = self.trace()
        os.unlink(src)
        os.mkfifo(src)
        p = subprocess.run([HEAPWISE, "lines", trace, src], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not a regular file", p.stdout)

    def test_a_source_changed_after_the_run_is_warned_of(self):
        """lines shows today's source against the run's line numbers: a
        file modified after the run started is named in one warning (text,
        JSON), an unchanged one in none. Before, nothing was said."""
        src, trace = self.trace()
        for args in ((src,), ("--json",)):
            p = self.heapwise("lines", trace, *args)
            self.assertNotIn("modified", p.stderr)
        with open(src, "a", encoding="utf-8") as f:
            f.write("# edited\n")
        later = os.stat(trace).st_mtime + 5
        os.utime(src, (later, later))
        for args in ((src,), ("--json",), ("-o", os.path.join(self.dir, "l.html"))):
            p = self.heapwise("lines", trace, *args)
            self.assertEqual(p.stderr.count(f"lines: {src} was modified at "), 1, (args, p.stderr))
            self.assertIn("after the run started", p.stderr)

    def test_long_files_show_lines_with_figures(self):
        src = os.path.join(self.dir, "long_prog.py")
        with open(src, "w", encoding="utf-8") as f:
            f.write("x = 1\n" * 100 + "keep = [bytearray(1000) for _ in range(1000)]\n"
                    + "y = 2\n" * 100)
        _, err, traces = self.run_traced([PY, src])
        text = self.heapwise("lines", traces[0], src).stdout
        rows = [ln.split()[0] for ln in text.splitlines() if re.match(r"^ +[0-9]+  ", ln)]
        self.assertEqual(rows, [str(n) for n in range(99, 104)], text)
        self.assertIn("     ...", text)
        full = self.heapwise("lines", traces[0], src, "--all").stdout
        self.assertEqual(len([ln for ln in full.splitlines() if re.match(r"^ +[0-9]+  ", ln)]),
                         201)


class HostileNames(TraceTest):
    """Names with terminal escape sequences, newlines, bidi overrides, bytes
    that are not UTF-8 and formula prefixes, in every output: text and
    stderr show them escaped, and every document parses with a real parser
    (xmllint, json, csv, the pprof decoder and go tool pprof)."""

    def clean(self, data, what):
        """Text a terminal can show as it is: UTF-8, no control character
        but newline, no C1 control."""
        text = data.decode("utf-8")  # strict: bytes that are not UTF-8 fail
        bad = sorted({c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f})
        self.assertEqual(bad, [], f"{what}: {text[:2000]!r}")
        return text

    def raw(self, *args, status=0):
        p = subprocess.run([HEAPWISE, *args], capture_output=True, timeout=300)
        if status is not None:
            self.assertEqual(p.returncode, status, p.stderr)
        self.clean(p.stderr, f"stderr of {args}")
        return p

    def xml(self, path, html=False):
        if not XMLLINT:
            self.skipTest("xmllint is not installed (Debian package libxml2-utils)")
        p = subprocess.run([XMLLINT, "--noout", *(["--html"] if html else []), path],
                           capture_output=True, text=True, errors="replace")
        # xmllint --html exits 0 on some errors: any message is a failure
        self.assertEqual((p.returncode, p.stderr), (0, ""), path)

    def every_output(self, trace):
        """Runs every report on trace and checks each output; returns the
        folded flame graph (the names as the reports show them)."""
        d = self.dir
        for args in (["summary"], ["top"], ["top", "--group-by", "line"],
                     ["top", "--group-by", "function"], ["top", "--group-by", "file"],
                     ["top", "--by", "allocated", "-n", "100"], ["leaks", "--include-all"],
                     ["dump"], ["diff", trace]):
            p = self.raw(*args[:1], trace, *args[1:])
            self.clean(p.stdout, args)
        for args in (["summary"], ["top", "--group-by", "function"], ["leaks"], ["diff", trace]):
            p = self.raw(*args[:1], trace, *args[1:], "--json")
            json.loads(p.stdout.decode("utf-8"))
        self.raw("export", trace, "--format", "json", "-o", os.path.join(d, "e.json"))
        self.raw("timeline", trace, "-o", os.path.join(d, "t.json"))
        for name in ("e.json", "t.json"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                json.load(f)
        # XML: the SVG flame graph and timeline, JUnit
        for args in (["flamegraph", trace, "-o", os.path.join(d, "f.svg")],
                     ["flamegraph", trace, "--metric", "allocated", "-o", os.path.join(d, "a.svg")],
                     ["timeline", trace, "-o", os.path.join(d, "t.svg")]):
            self.raw(*args)
            self.xml(args[-1])
        junit = os.path.join(d, "j.xml")
        p = self.raw("check", trace, "--max-leaked", "1", "--max-peak", "1", "--junit", junit,
                     status=1)
        self.clean(p.stdout, "check")
        self.xml(junit)
        # HTML: parses, and its data block is JSON
        for args in (["flamegraph", trace, "-o", os.path.join(d, "f.html")],
                     ["timeline", trace, "-o", os.path.join(d, "t.html")]):
            self.raw(*args)
            self.xml(args[-1], html=True)
            with open(args[-1], encoding="utf-8") as f:
                page = f.read()
            data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page,
                             re.S)
            json.loads(data.group(1))
        # CSV: one header, rows as wide, no cell a spreadsheet would evaluate
        self.raw("timeline", trace, "-o", os.path.join(d, "t.csv"))
        with open(os.path.join(d, "t.csv"), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual({len(r) for r in rows}, {len(rows[0])})
        self.assertGreater(len(rows), 100)
        for cell in rows[0]:
            self.assertNotIn(cell[:1], ("=", "+", "-", "@"), cell)
        # pprof: UTF-8 strings, and go tool pprof reads and prints them
        pb = os.path.join(d, "p.pb.gz")
        self.raw("export", trace, "--format", "pprof", "-o", pb)
        pprof_strings(pb)
        if GO:
            p = subprocess.run([GO, "tool", "pprof", "-top", "-sample_index=alloc_space", pb],
                               capture_output=True, timeout=300, env=go_env(d))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.clean(p.stdout, "go tool pprof -top")
        folded = self.raw("flamegraph", trace, "-o", "-").stdout
        return self.clean(folded, "folded")

    def test_crafted_names(self):
        trace = os.path.join(GOLDEN, "names.hwt")
        folded = self.every_output(trace)
        self.assertIn("f\\n  1  999 MiB  fake\\u202e (/tmp/\\xff/caf\\xe9\\x1b[31m.py:3)", folded)
        # marker labels (a trace's and the command line's) in text and errors
        p = self.raw("summary", trace, "--between", b"start\x1b[2J", b"end\xff")
        self.assertIn("end\\xff", self.clean(p.stdout, "between"))
        p = self.raw("summary", trace, "--between", b"no\x1b[2J", b"pe", status=2)
        self.assertIn('marker "no\\x1b[2J" is not in the trace', p.stderr.decode())

    def test_script_under_a_path_that_is_not_utf8(self):
        where = os.path.join(os.fsencode(self.dir), b"d\xff\xfe")
        os.mkdir(where)
        script = os.path.join(where, b"names.py")
        shutil.copy(os.path.join(HERE, "py", "names.py"), script)
        _, err, traces = self.run_traced([PY, script])
        folded = self.every_output(traces[0])
        self.assertRegex(folded, r"/d\\xff\\xfe/names\.py:\d+\)")
        self.assertIn("evil\\x1b]0:pwned\\x07\\n    1  999 MiB  fake row\\u202e (", folded)
        self.assertIn("made (=cmd|' /C calc'!A0\\x1b[2J.py:2)", folded)


def go_env(d):
    """go tool needs a writable cache and home."""
    env = dict(os.environ)
    env.setdefault("HOME", d)
    env["GOCACHE"] = os.path.join(d, "gocache")
    env["GOFLAGS"] = "-mod=mod"
    env["GOTOOLCHAIN"] = "local"
    env["GOTELEMETRY"] = "off"
    return env


class ProcessTreeReports(TraceTest):
    """Several traces of one process tree: each process, and the tree combined."""

    def test_family_per_process_and_combined(self):
        _, err, traces = self.run_traced([self.prog("family")])
        self.assertEqual(len(traces), 3, err)
        doc = self.json("top", *traces, "--by", "leaked", "--group-by", "function", "-n", "1000")
        self.assertEqual(doc["combined"]["processes"], 3)
        combined = {c["frames"][0]["function"]: c for c in doc["combined"]["callsites"]
                    if c["frames"]}
        self.assertEqual(combined["leak_in_parent"]["leaked_bytes"], 4000)
        self.assertEqual(combined["leak_in_fork_child"]["leaked_bytes"], 3000)
        self.assertEqual(combined["leak_in_exec_child"]["leaked_bytes"], 500)
        # the same function in several processes is one combined row: main
        # appears in all three traces
        self.assertEqual(len(doc["processes"]), 3)
        self.assertEqual([p["trace"] for p in doc["processes"]], traces)
        each = [{c["frames"][0]["function"]: c["leaked_bytes"] for c in p["callsites"]
                 if c["frames"]} for p in doc["processes"]]
        self.assertEqual(sorted(e.get("leak_in_parent", 0) for e in each), [0, 0, 4000])
        s = self.json("summary", *traces)
        self.assertEqual(s["combined"]["processes"], 3)
        self.assertEqual(s["combined"]["leaked_bytes"],
                         sum(p["leaked_bytes"] for p in s["processes"]))
        self.assertEqual(s["combined"]["allocations"],
                         sum(p["allocations"] for p in s["processes"]))
        self.assertEqual(sorted(s["combined"]["pids"]), sorted(p["pid"] for p in s["processes"]))
        text = self.heapwise("summary", *traces).stdout
        self.assertIn("3 processes of one tree", text)
        self.assertEqual(text.count("heapwise summary of "), 4)  # combined + 3

    def test_two_calls_on_one_line_are_one_combined_row(self):
        """A process tree's combined rows match stacks by the frames they
        print without columns, as diff does: the two calls of one line in a
        parent and its fork child are one combined row by stack, its bytes
        both processes' (its rows are joined on report_row_hash, which must
        skip the column a single process's rows may show)."""
        script = self.script("forked_line.py",
                             "import os\n"
                             "pid = os.fork()\n"
                             "a, b = bytearray(1_000_000), bytearray(2_000_000)\n"
                             "if pid:\n    os.waitpid(pid, 0)\nelse:\n    os._exit(0)\n")
        _, err, traces = self.run_traced([PY, script])
        self.assertEqual(len(traces), 2, err)
        doc = self.json("top", *traces, "--by", "leaked", "-n", "40")
        rows = [c for c in doc["combined"]["callsites"] if c["frames"] and
                c["frames"][0]["file"] == script and c["frames"][0]["line"] == 3]
        self.assertEqual(len(rows), 1, rows)
        self.assertGreaterEqual(rows[0]["leaked_bytes"], 6_000_000)

    def test_unrelated_traces_are_reported_apart(self):
        """Two runs in one directory are two process trees, each reported on
        its own with a warning (before: "6 processes of one tree", their
        peaks and callsites added up without a word); a flame graph or an
        export of both is refused."""
        _, _, first = self.run_traced([self.prog("family")])
        _, _, second = self.run_traced([self.prog("family")])
        self.assertEqual((len(first), len(second)), (3, 3))
        mixed = [second[0], first[1], second[1], first[0], first[2], second[2]]
        p = self.heapwise("summary", *mixed)
        self.assertIn("heapwise: warning: the 6 traces are 2 process trees, not one", p.stderr)
        self.assertNotIn("6 processes", p.stdout)
        self.assertEqual(p.stdout.count("3 processes of one tree"), 2, p.stdout)
        self.assertIn("process tree 1 of 2: ", p.stdout)
        self.assertIn("process tree 2 of 2: ", p.stdout)
        doc = json.loads(self.heapwise("summary", *mixed, "--json").stdout)
        self.assertEqual(len(doc["trees"]), 2)
        runs = [sorted(p["trace"] for p in t["processes"]) for t in doc["trees"]]
        self.assertEqual(runs, [sorted(second), sorted(first)])  # in the order of first mention
        for t in doc["trees"]:
            self.assertEqual(t["combined"]["processes"], 3)
            self.assertEqual(t["combined"]["leaked_bytes"],
                             sum(p["leaked_bytes"] for p in t["processes"]))
        doc = json.loads(self.heapwise("top", *mixed, "--json").stdout)
        self.assertEqual([t["combined"]["processes"] for t in doc["trees"]], [3, 3])
        for cmd in (["flamegraph", "-o", os.path.join(self.dir, "f.html")],
                    ["export", "--format", "pprof", "-o", os.path.join(self.dir, "p.pb.gz")]):
            r = self.heapwise(cmd[0], *mixed, *cmd[1:], status=2)
            self.assertIn("are 2 process trees, not one", r.stderr)
        # one run's traces are one tree: no warning
        p = self.heapwise("summary", *first)
        self.assertNotIn("warning: the", p.stderr)
        self.assertIn("3 processes of one tree", p.stdout)

    def test_combined_peak_is_concurrent_not_summed(self):
        _, err, traces = self.run_traced([self.prog("tree")])
        self.assertEqual(len(traces), 3, err)
        s = self.json("summary", *traces)
        mib = 1 << 20
        peaks = sorted(p["peak_bytes"] for p in s["processes"])
        self.assertGreaterEqual(peaks[0], 3 * mib)
        self.assertGreaterEqual(sum(peaks), 10 * mib)
        # the parent's 4 MiB and one child's 3 MiB were live together, never
        # both children's
        self.assertGreaterEqual(s["combined"]["peak_bytes"], 7 * mib)
        self.assertLess(s["combined"]["peak_bytes"], 7 * mib + 256 * 1024)
        self.assertEqual(s["combined"]["leaked_bytes"] >= 3 * mib, True)

    def test_flame_graph_and_exports_of_a_tree(self):
        _, _, traces = self.run_traced([self.prog("family")])
        folded = os.path.join(self.dir, "tree.folded")
        self.heapwise("flamegraph", *traces, "--metric", "leaked", "-o", folded)
        roots = {}
        with open(folded) as f:
            lines = f.read().splitlines()
        for line in lines:
            stack, value = line.rsplit(" ", 1)
            root = stack.split(";")[0]
            roots[root] = roots.get(root, 0) + int(value)
        self.assertEqual(len(roots), 3)  # one frame per process
        s = self.json("summary", *traces)
        for p in s["processes"]:
            name = [r for r in roots if r.startswith(f"pid {p['pid']} ")]
            self.assertEqual(len(name), 1, roots)
            self.assertEqual(roots[name[0]], p["leaked_bytes"])
        out = os.path.join(self.dir, "tree.pb.gz")
        self.heapwise("export", *traces, "--format", "pprof", "-o", out)
        top = fields(gzip.open(out).read())
        strings = [v.decode() for f, wt, v in top if f == 6]
        pids = set()
        allocated = 0
        for f, wt, v in top:
            if f != 2:
                continue
            sample = fields(v)
            allocated += next(packed(x) for ff, _, x in sample if ff == 2)[1]
            label = dict((ff, x) for ff, _, x in fields(next(x for ff, _, x in sample if ff == 3)))
            self.assertEqual(strings[label[1]], "pid")
            pids.add(label[3])
        self.assertEqual(pids, {p["pid"] for p in s["processes"]})
        self.assertEqual(allocated, s["combined"]["allocated_bytes"])
        doc = json.loads(self.heapwise("export", *traces, "--format", "json", "-o", "-").stdout)
        self.assertEqual(len(doc["processes"]), 3)
        self.assertEqual(doc["combined"]["summary"]["processes"], 3)
        # a timeline is per process
        r = self.heapwise("timeline", *traces, "-o", os.path.join(self.dir, "t.json"), status=2)
        self.assertIn("one trace at a time", r.stderr)

    def test_progress_only_on_a_terminal(self):
        # a trace of more than 8 MiB: 3 million events
        _, _, traces = self.run_traced([self.prog("churn"), "1500000", "0"], "--no-compress")
        self.assertGreater(os.path.getsize(traces[0]), 8 << 20)
        quiet = self.heapwise("summary", traces[0])
        self.assertNotIn("reading", quiet.stderr)
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(HEAPWISE, [HEAPWISE, "summary", traces[0]])
        out = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        text = out.decode(errors="replace")
        self.assertRegex(text, r"reading t\.\d+\.hwt +\d+% \([\d.]+ M events\)")
        self.assertIn("\r\x1b[K", text)  # the line is erased before the report
        self.assertIn("heapwise summary of", text)


if __name__ == "__main__":
    main()
