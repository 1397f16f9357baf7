"""Sampling mode (issue 17): `heapwise run --sample SIZE` records about one
allocation per SIZE bytes, and every report gives estimates. A program with
known callsites is traced exactly once and sampled several times: the mean of
the sampled estimates must be within 10% of the exact figures; every sampled
block's free must be seen (nothing looks leaked when everything is freed); the
reports must say they are estimates, and check must refuse exact limits."""
import json
import os
import subprocess
import sys

from helpers import HEAPWISE, TraceTest, main

INTERVAL = 32 * 1024
RUNS = 8
SITES = ["site_small", "site_medium", "site_large", "site_calloc", "site_grow", "site_thread"]

PY_PROG = r"""
import sys
keep = []
def objects():            # PyObject_Malloc: small objects
    out = []
    for i in range(60000):
        out.append((i, str(i)))
    return out
def buffers():            # bytearray: PyObject_Malloc over 512 bytes -> malloc
    out = []
    for i in range(4000):
        out.append(bytearray(2000))
    return out
def zeroed():             # PyObject_Calloc: bytes(300) is a 334-byte calloc
    out = []
    for i in range(30000):
        out.append(bytes(300))
    return out
def churn():              # allocated and freed at once (str: no free list)
    for i in range(200000):
        x = "ab" * (i % 50 + 10)
for _ in range(2):
    keep.append(objects())
    keep.append(buffers())
    keep.append(zeroed())
churn()
"""


def mean(xs):
    return sum(xs) / len(xs)


class Sampling(TraceTest):
    def sampled_sites(self, mode, runs, flags=("--sample", str(INTERVAL))):
        """Per run: {function: callsite} of a sampled trace of `sampled mode`."""
        out = []
        for _ in range(runs):
            _, _, traces = self.run_traced([self.prog("sampled"), mode], *flags)
            self.assertEqual(len(traces), 1)
            out.append(self.by_function(traces[0], by="allocated"))
        return out

    def test_estimates_within_ten_percent_of_exact_over_runs(self):
        _, _, exact = self.run_traced([self.prog("sampled"), "keep"])
        truth = self.by_function(exact[0], by="allocated")
        runs = self.sampled_sites("keep", RUNS)
        for site in SITES + ["site_churn"]:
            for field in ("allocated_bytes", "leaked_bytes", "count"):
                want = truth[site][field]
                if field == "leaked_bytes" and site == "site_churn":
                    self.assertEqual(want, 0)
                    continue
                got = mean([r[site][field] if site in r else 0 for r in runs])
                self.assertLess(abs(got - want), 0.10 * want,
                                f"{site} {field}: exact {want}, sampled mean {got:.0f} over {RUNS} runs")
        # the whole: the peak
        peaks = []
        for _ in range(3):
            _, _, t = self.run_traced([self.prog("sampled"), "keep"], "--sample", str(INTERVAL))
            peaks.append(self.json("summary", t[0])["peak_bytes"])
        exact_peak = self.json("summary", exact[0])["peak_bytes"]
        self.assertLess(abs(mean(peaks) - exact_peak), 0.10 * exact_peak)

    def test_every_sampled_free_is_seen(self):
        # Everything freed (by other threads, after realloc, shrunk): a free
        # missed would leave a sampled block live, a free of an unsampled
        # block recorded would be a free of an unknown block.
        _, _, exact = self.run_traced([self.prog("sampled"), "free"])
        exact_events = self.json("summary", exact[0])["events"]
        for _ in range(3):
            _, _, traces = self.run_traced([self.prog("sampled"), "free"], "--sample", str(INTERVAL))
            s = self.json("summary", traces[0])
            self.assertEqual(s["sample_interval"], INTERVAL)
            leaked = {f: c["leaked_bytes"] for f, c in self.by_function(traces[0]).items()}
            for site in SITES:
                self.assertEqual(leaked.get(site, 0), 0, site)
            self.assertEqual(s["unmatched_frees"], 0)
            # an unsampled block is not in the trace, nor is its free
            self.assertLess(s["events"], exact_events / 20)

    def test_allocator_below_the_shim_keeps_the_guard(self):
        """Over glibc's allocator the libc hooks call it without the guard
        (it calls nothing the shim interposes); over another one (here a
        wrapper that maps a page of bookkeeping every 64 mallocs, as
        jemalloc or tcmalloc map theirs) the real call stays under the
        guard: its mappings are not the program's, and the program's
        allocations are estimated as over glibc."""
        _, _, t = self.run_traced([self.prog("churn_walloc"), "100000", "0"], "--sample", "64K")
        kinds = self.json("summary", t[0])["kinds"]
        self.assertEqual(kinds["mmap"]["allocations"], 0, kinds["mmap"])
        # 100,000 blocks of 1-100 bytes (5,050,000 bytes), all freed
        self.assertEqual(kinds["malloc"]["live_bytes"], 0, kinds["malloc"])
        self.assertGreater(kinds["malloc"]["allocated_bytes"], 3_000_000, kinds["malloc"])

    def test_fork_children_sample_with_a_set_of_their_own(self):
        _, _, traces = self.run_traced([self.prog("sampled"), "free", "fork"],
                                       "--sample", str(INTERVAL))
        self.assertEqual(len(traces), 2)
        for t in traces:
            s = self.json("summary", t)
            self.assertEqual(s["sample_interval"], INTERVAL, t)
            # the child frees its parent's sampled blocks: not its trace's
            self.assertEqual(s["unmatched_frees"], 0, t)
            leaked = {f: c["leaked_bytes"] for f, c in self.by_function(t).items()}
            for site in SITES:
                self.assertEqual(leaked.get(site, 0), 0, (t, site))

    def fork_firsts(self, how):
        """sampfork HOW: (the parent's first sampled block of the sequence,
        [each child's]), by size (1024 + its index in the sequence)."""
        _, _, traces = self.run_traced([self.prog("sampfork"), how], "--sample", "64K")
        self.assertEqual(len(traces), 17, how)
        first = {}
        for t in traces:
            dump = self.heapwise("dump", t).stdout
            self.assertIn("SAMPLE seq=", dump, (how, t))
            head = dump.split("\n", 1)[0]  # header: format 3, pid P, parent Q, ...
            pid = int(head.split("pid ")[1].split(",")[0])
            ppid = int(head.split("parent ")[1].split(",")[0])
            sizes = [int(w[5:]) for line in dump.splitlines() if "ALLOC malloc" in line
                     for w in line.split() if w.startswith("size=")]
            seq = [n for n in sizes if 1024 <= n < 1024 + 4000]
            first[pid] = (ppid, seq[0] if seq else 1 << 40)
        parent = [p for p, (pp, _) in first.items() if pp not in first]
        self.assertEqual(len(parent), 1, (how, first))
        return first[parent[0]][1], [f for p, (_, f) in first.items() if p != parent[0]]

    def test_fork_children_draw_streams_of_their_own(self):
        # 16 children made back to back, with fork() or without atfork
        # handlers (raw fork, _Fork, clone); then the parent and each child
        # allocate the same sizes 1024 + i. A child sampling from a copy of
        # its parent's countdown picks the parent's first block (16 of 16
        # before each child drew a countdown of its own: fork's child
        # handler reseeded the generator only); with streams of their own
        # about 1 in 100 does by chance, 4 of 16 about once in 10^5 runs.
        # A child made without atfork handlers that noticed it was one only
        # at its parent's sample point samples nothing before that point:
        # no child's first block comes before the parent's (with streams of
        # their own, all 16 come after it in about 1 run of 17, so up to
        # three runs are looked at: 1 in 5000 fails by chance).
        for how in ("fork", "syscall", "_Fork", "clone"):
            earlier = False
            for run in range(3):
                mine, children = self.fork_firsts(how)
                same = sum(1 for f in children if f == mine)
                self.assertLess(same, 4, f"{how}: {same} of 16 children sampled their "
                                         f"parent's first block {mine}: {children}")
                if any(f < mine for f in children):
                    earlier = True
                    break
            self.assertTrue(earlier, f"{how}: in 3 runs no child sampled a block before its "
                                     "parent's first")

    def test_python_domains(self):
        script = self.script("prog.py", PY_PROG)
        _, _, exact = self.run_traced([sys.executable, script])

        def by_func(trace):
            doc = self.json("top", trace, "--by", "allocated", "--group-by", "function",
                            "-n", "100000")
            return {c["frames"][0]["function"]: c for c in doc["callsites"]
                    if c["frames"] and c["frames"][0]["kind"] == "python"}
        truth = by_func(exact[0])
        runs = []
        for _ in range(5):
            _, _, t = self.run_traced([sys.executable, script], "--sample", str(INTERVAL))
            runs.append(by_func(t[0]))
        for func in ("objects", "buffers", "zeroed", "churn"):
            want = truth[func]["allocated_bytes"]
            got = mean([r.get(func, {}).get("allocated_bytes", 0) for r in runs])
            self.assertLess(abs(got - want), 0.10 * want, f"{func}: exact {want}, sampled {got:.0f}")
        for func in ("objects", "buffers", "zeroed"):
            want = truth[func]["leaked_bytes"]
            got = mean([r.get(func, {}).get("leaked_bytes", 0) for r in runs])
            self.assertLess(abs(got - want), 0.10 * want, f"{func}: exact {want}, sampled {got:.0f}")

    def test_no_retag_for_unsampled_blocks(self):
        """3.13+ gives an object taken from a free list its new stack with a
        RETAG (the reference tracer); the sampling mode does not run it: the
        hooks keep no last block for the allocations they do not record, so
        every object made after one would get a RETAG of a block the trace
        does not have."""
        py = "/root/.pyenv/versions/3.13.0/bin/python3"
        if not os.path.exists(py):
            self.skipTest(f"{py} is not installed")
        script = self.script("tuples.py",
                             "out = []\n"
                             "for i in range(100000):\n"
                             "    t = (i, i + 1, str(i))\n"
                             "    out.append(t[2])\n"
                             "    del t\n")

        def retags(trace):
            dump = self.heapwise("dump", trace).stdout
            return sum(1 for line in dump.splitlines() if line.split()[:1] == ["RETAG"])
        _, _, exact = self.run_traced([py, script])
        self.assertGreater(retags(exact[0]), 1000, "the exact mode retags free lists' tuples")
        _, _, sampled = self.run_traced([py, script], "--sample", str(INTERVAL))
        self.assertEqual(retags(sampled[0]), 0)

    def test_free_lists_left_to_cpython(self):
        """3.11 and 3.12: the exact mode hands freed lists and dicts back to
        the allocator by wrapping their types' deallocators (README, "Objects
        from CPython's free lists"); the sampling mode leaves the free lists
        as CPython keeps them, as it does on 3.13+, so a list a free list
        serves costs nothing. The deallocator of list, read from the type,
        lies in the shim's file in the exact mode and not when sampling."""
        script = self.script("dealloc.py",
                             "import ctypes\n"
                             "for _ in range(3):\n"
                             "    x = [[i] for i in range(100)]\n"
                             "    del x\n"
                             "# PyTypeObject: ob_refcnt, ob_type, ob_size, tp_name, tp_basicsize,\n"
                             "# tp_itemsize, then tp_dealloc\n"
                             "fn = ctypes.c_void_p.from_address(id(list) + 6 * 8).value\n"
                             "for line in open('/proc/self/maps'):\n"
                             "    f = line.split()\n"
                             "    lo, hi = (int(v, 16) for v in f[0].split('-'))\n"
                             "    if lo <= fn < hi:\n"
                             "        print('dealloc in', f[5] if len(f) > 5 else '?')\n")
        pythons = [sys.executable, "/root/.pyenv/versions/3.12.1/bin/python3"]
        tried = 0
        for py in pythons:
            if not os.path.exists(py):
                continue
            tried += 1
            _, out, _ = self.run_traced_stdout([py, script])
            self.assertIn("libheapwise", out, f"{py}: the exact mode wraps list's deallocator")
            _, out, _ = self.run_traced_stdout([py, script], "--sample", str(INTERVAL))
            self.assertIn("dealloc in", out)
            self.assertNotIn("libheapwise", out, f"{py}: {out}")
        if not tried:
            self.skipTest("no 3.11 or 3.12 interpreter")

    def test_pymalloc_arenas_are_not_mappings(self):
        """The OBJ and MEM hooks call pymalloc without the guard for its own
        sizes (1-512 bytes); its arenas (1 MiB mappings) are made under the
        guard by the arena allocator the shim wraps, so they are not
        recorded as mappings over the objects they hold."""
        script = self.script("arenas.py", "keep = [(i, str(i)) for i in range(300000)]\n")
        _, _, t = self.run_traced([sys.executable, script], "--sample", "64K")
        doc = self.json("summary", t[0])
        self.assertEqual(doc["sample_interval"], 65536)
        self.assertEqual(doc["kinds"]["mmap"]["allocations"], 0, doc["kinds"]["mmap"])
        # 300,000 tuples and str of about 50 bytes each
        self.assertGreater(doc["kinds"]["pyobj"]["allocated_bytes"], 20 << 20)

    def test_sampled_small_objects_frees_are_seen(self):
        """With pymalloc the domains' free is pymalloc's own (no hook): a
        sampled block is a libc block pymalloc hands back to free(), where
        the shim sees it. 400,000 small objects made and dropped, 1,000 of
        about 100 bytes each kept: the leak estimate is the kept ones', and
        every sampled block dropped was seen freed."""
        script = self.script("churn.py",
                             "keep = []\n"
                             "def churn():\n"
                             "    for i in range(400000):\n"
                             "        t = (i, str(i), [i])\n"
                             "        if i % 400 == 0:\n"
                             "            keep.append(t)\n"
                             "churn()\n")
        _, _, t = self.run_traced([sys.executable, script], "--sample", "16K")
        doc = self.json("summary", t[0])
        obj = doc["kinds"]["pyobj"]
        self.assertGreater(obj["allocations"], 1000, obj)
        # sampled blocks of the dropped objects: freed (each stands for
        # about 16 KiB; the 1,000 kept ones hold about 150 KB)
        self.assertLess(obj["live_bytes"], 2 << 20, obj)
        self.assertGreater(obj["frees"], 0.9 * obj["allocations"], obj)

    def test_no_double_count_under_tracemalloc(self):
        """-X tracemalloc starts between two installs of the hooks: ours
        wrap tracemalloc's, which wrap ours again. The inner hook (the
        unguarded pymalloc one) must not count what the outer one counted:
        the estimates stay the exact mode's."""
        script = self.script("prog.py", PY_PROG)
        argv = [sys.executable, "-X", "tracemalloc", script]

        def pyobj(trace):
            return self.json("summary", trace)["kinds"]["pyobj"]["allocated_bytes"]
        _, _, exact = self.run_traced(argv)
        want = pyobj(exact[0])
        got = mean([pyobj(self.run_traced(argv, "--sample", "64K")[2][0]) for _ in range(3)])
        self.assertLess(abs(got - want), 0.10 * want, f"exact {want}, sampled {got:.0f}")


class Reports(TraceTest):
    def setUp(self):
        super().setUp()
        _, _, t = self.run_traced([self.prog("sampled"), "keep"], "--sample", "32K")
        self.trace = t[0]

    def test_check_refuses_a_sampled_trace(self):
        p = self.heapwise("check", self.trace, "--max-peak", "10G", status=2)
        self.assertIn("sampled every 32.0 KiB", p.stderr)
        self.assertIn("--allow-sampled", p.stderr)
        self.assertNotIn("PASS", p.stdout)
        p = self.heapwise("check", self.trace, "--max-peak", "10G", "--allow-sampled")
        self.assertIn("estimates", p.stdout)
        self.assertIn("PASS", p.stdout)
        self.heapwise("check", self.trace, "--max-peak", "1K", "--allow-sampled", status=1)

    def test_every_report_says_it_is_sampled(self):
        note = "sampled every 32.0 KiB on average"
        self.assertIn(note, self.heapwise("summary", self.trace).stdout)
        self.assertIn(note, self.heapwise("top", self.trace).stdout)
        self.assertIn(note, self.heapwise("leaks", self.trace).stdout)
        self.assertEqual(self.json("summary", self.trace)["sample_interval"], 32768)
        self.assertEqual(self.json("top", self.trace)["sample_interval"], 32768)
        self.assertEqual(self.json("leaks", self.trace)["sample_interval"], 32768)
        out = os.path.join(self.dir, "f.svg")
        p = self.heapwise("flamegraph", self.trace, "-o", out)
        with open(out) as f:
            self.assertIn(note, f.read())
        for name in ("t.json", "t.html"):
            out = os.path.join(self.dir, name)
            self.heapwise("timeline", self.trace, "-o", out)
            with open(out) as f:
                text = f.read()
            self.assertIn('"sample_interval":32768', text)
        out = os.path.join(self.dir, "t.csv")
        self.assertIn(note, self.heapwise("timeline", self.trace, "-o", out).stderr)
        out = os.path.join(self.dir, "e.json")
        self.heapwise("export", self.trace, "--format", "json", "-o", out)
        with open(out) as f:
            self.assertEqual(json.load(f)["summary"]["sample_interval"], 32768)
        out = os.path.join(self.dir, "e.pb")
        p = self.heapwise("export", self.trace, "--format", "pprof", "-o", out)
        self.assertIn(note, p.stderr)
        with open(out, "rb") as f:
            data = f.read()
        import gzip
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        self.assertIn(note.encode(), data)  # the profile's comment
        self.assertIn(note, self.heapwise("diff", self.trace, self.trace).stdout)
        self.assertIn("SAMPLE seq=", self.heapwise("dump", self.trace).stdout)
        # an exact trace says nothing of the sort
        _, _, exact = self.run_traced([self.prog("sampled"), "keep"])
        self.assertNotIn("sampled every", self.heapwise("summary", exact[0]).stdout)
        self.assertIsNone(self.json("summary", exact[0])["sample_interval"])

    def test_bad_intervals(self):
        for bad in ("0", "x", "2T", "-1", ""):
            p = subprocess.run([HEAPWISE, "run", "--sample", bad, "--", "true"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("is not a sampling interval", p.stderr)
        env = dict(os.environ, HEAPWISE_SAMPLE="lots",
                   HEAPWISE_OUTPUT=os.path.join(self.dir, "bad.hwt"))
        p = subprocess.run([HEAPWISE, "run", "--", self.prog("sampled"), "free"],
                           capture_output=True, text=True, env=env, cwd=self.dir)
        self.assertEqual(p.returncode, 0)
        self.assertIn("HEAPWISE_SAMPLE=lots is invalid", p.stderr)


if __name__ == "__main__":
    main()
