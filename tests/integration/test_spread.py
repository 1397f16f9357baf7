"""The sampled estimates' intervals (issue 17): every report of a sampled
trace gives each estimate a standard error, and text a 95% interval. The
program `spread` allocates known sizes: 64-byte blocks and blocks of a
quarter of, one and two times the interval (where the chance of a block being
recorded, p = 1 - exp(-n / I), is far from 0, so a variance without its
1 - p is too wide), and small blocks freed at once. It is traced many times
at a small interval, and the exact figures must lie within the printed 95%
interval in about 95% of the estimates."""
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile

from helpers import HEAPWISE, TraceTest, main

INTERVAL = 16 * 1024
RUNS = 240
# function: (bytes, "peak" for a kept site, "allocated" for the churn)
TRUTH = {
    "spread_small": (20000 * 64, "peak"),
    "spread_quarter": (300 * 4096, "peak"),
    "spread_one": (80 * 16384, "peak"),
    "spread_two": (40 * 32768, "peak"),
    "spread_churn": (20000 * 100, "allocated"),
}
LARGE = ("spread_quarter", "spread_one", "spread_two")


def binomial_bounds(n, p=0.95, sds=4.0):
    """The coverage a correct 95% interval stays within over n estimates
    except with a probability of about 1e-4 (4 standard deviations)."""
    sd = math.sqrt(p * (1 - p) / n)
    return p - sds * sd, p + sds * sd


class Spread(TraceTest):
    def trace(self, *flags):
        _, _, traces = self.run_traced([self.prog("spread")], "--no-compress", *flags)
        self.assertEqual(len(traces), 1)
        return traces[0]

    def rows(self, trace):
        return self.by_function(trace, by="allocated")

    def test_exact_figures_lie_in_the_95_percent_interval_95_percent_of_the_time(self):
        # RUNS runs of the program under one `heapwise run` (a shell loop:
        # each exec'd process samples with a stream of its own), read by one
        # `top` (several traces: each process's document)
        loop = f'i=0; while [ $i -lt {RUNS} ]; do "$1"; i=$((i+1)); done'
        _, _, traces = self.run_traced(["sh", "-c", loop, "sh", self.prog("spread")],
                                       "--no-compress", "--sample", str(INTERVAL), timeout=300)
        doc = self.json("top", *traces, "--by", "allocated", "--group-by", "function",
                        "-n", "100000")
        # the processes joined: a row's variance is its processes' added
        for c in doc["combined"]["callsites"]:
            self.assertIn("peak_stderr_bytes", c)
        runs = []
        for p in doc["processes"]:
            rows = {c["frames"][0]["function"]: c for c in p["callsites"] if c["frames"]}
            if "spread_small" in rows or "spread_churn" in rows:
                runs.append(rows)
        self.assertEqual(len(runs), RUNS)
        hits = {f: 0 for f in TRUTH}
        z2 = []
        for rows in runs:
            for f, (want, field) in TRUTH.items():
                row = rows.get(f)
                # a site with no block recorded is estimated at 0, with no spread
                est = row[field + "_bytes"] if row else 0
                se = row[field + "_stderr_bytes"] if row else 0
                hits[f] += abs(est - want) <= 1.96 * se
                if se:
                    z2.append(((est - want) / se) ** 2)
        n = RUNS * len(TRUTH)
        coverage = sum(hits.values()) / n
        lo, hi = binomial_bounds(n)
        per_site = {f: round(h / RUNS, 3) for f, h in hits.items()}
        print(f"\ncoverage {coverage:.3f} of {n} estimates (bounds {lo:.3f}-{hi:.3f}), "
              f"per site {per_site}, mean squared z {sum(z2) / len(z2):.3f}")
        self.assertTrue(lo <= coverage <= hi,
                        f"coverage {coverage:.3f} of {n} estimates outside [{lo:.3f}, {hi:.3f}]: {per_site}")
        # the blocks comparable to the interval on their own: a variance
        # without 1 - p covers 99-100% of them
        nl = RUNS * len(LARGE)
        cl = sum(hits[f] for f in LARGE) / nl
        lo, hi = binomial_bounds(nl)
        self.assertTrue(lo <= cl <= hi,
                        f"coverage {cl:.3f} of the large blocks' {nl} estimates outside [{lo:.3f}, {hi:.3f}]: {per_site}")
        # squared standardized errors average 1 when the variance is right
        m = sum(z2) / len(z2)
        self.assertTrue(0.8 < m < 1.25, f"mean squared z {m:.3f} over {len(z2)} estimates")
        # the summary's counts of frees and leaked blocks are estimates too,
        # with their intervals (before: printed without one): against an
        # exact run's counts (the program's are the same every run)
        exact = self.json("summary", self.trace())
        docs = self.json("summary", *traces)["processes"]
        docs = [d for d in docs if d["executable"].endswith("/spread")]
        self.assertEqual(len(docs), RUNS)
        for count in ("frees", "leaked_blocks"):
            hit = sum(abs(d[count] - exact[count]) <= 1.96 * d[count + "_stderr"] for d in docs)
            lo, hi = binomial_bounds(RUNS)
            print(f"{count}: coverage {hit / RUNS:.3f} of {RUNS} (exact {exact[count]})")
            self.assertTrue(lo <= hit / RUNS <= hi,
                            f"{count}: coverage {hit / RUNS:.3f} outside [{lo:.3f}, {hi:.3f}]")

    def test_reports_show_intervals_and_few_samples(self):
        t = self.trace("--sample", str(INTERVAL))
        # top: a line of 95% intervals under each row
        out = self.heapwise("top", t, "--group-by", "function").stdout
        self.assertIn("95% interval: peak \u00b1 ", out)
        # JSON: every row has its standard errors and samples
        for c in self.json("top", t)["callsites"]:
            for k in ("peak", "leaked", "allocated"):
                self.assertIn(k + "_stderr_bytes", c)
                self.assertIn(k + "_samples", c)
            self.assertIn("count_stderr", c)
        for c in self.json("leaks", t)["callsites"]:
            self.assertIn("leaked_stderr_bytes", c)
        s = self.json("summary", t)
        for k in ("peak_stderr_bytes", "leaked_stderr_bytes", "allocated_stderr_bytes",
                  "allocations_stderr"):
            self.assertIn(k, s)
        self.assertGreater(s["peak_samples"], 100)
        for c in s["peak"]["callsites"]:
            self.assertIn("peak_stderr_bytes", c)
        text = self.heapwise("summary", t).stdout
        self.assertRegex(text, r"peak heap   \S+ \S+ \u00b1 \S+ \S+ \(\d+ samples\)")
        # a site seen through fewer than 5 samples is marked unreliable:
        # the churn's bytes at the peak are one 100-byte block at most
        rows = self.rows(t)
        few = [f for f, r in rows.items() if 0 < r["allocated_samples"] < 5 or
               0 < r["peak_samples"] < 5]
        out = self.heapwise("top", t, "--group-by", "function", "--by", "allocated",
                            "-n", "1000").stdout
        if few:
            self.assertIn("unreliable)", out)
        # diff: the change's interval adds both sides' variances
        t2 = self.trace("--sample", str(INTERVAL))
        d = self.json("diff", t, t2, "--group-by", "function", "-n", "100")
        for c in d["callsites"]:
            if c["base"] and c["new"]:
                want = math.hypot(c["base"]["peak_stderr_bytes"], c["new"]["peak_stderr_bytes"])
                self.assertLessEqual(abs(c["delta"]["peak_stderr_bytes"] - want), 1.5)
        self.assertIn("95% interval of the change", self.heapwise("diff", t, t2).stdout)

    def test_headlines_have_their_intervals(self):
        """The totals above the rows are estimates too: the summary's
        allocations and bytes, top's peak line, diff's leaked and allocated
        lines (text and JSON); top --by temporary says a sampled trace
        overcounts its temporaries."""
        t = self.trace("--sample", str(INTERVAL))
        pm = r"\u00b1 \S+ \S+ \(\d+ samples\)"
        text = self.heapwise("summary", t).stdout
        self.assertRegex(text, r"heap        \d+ \u00b1 \d+ allocations \(\S+ \S+ " + pm +
                         r"\), \d+ \u00b1 \d+ frees\n")
        self.assertRegex(text, r"leaked      \S+ \S+ " + pm + r" in \d+ \u00b1 \d+ blocks? ")
        s = self.json("summary", t)
        self.assertGreater(s["frees_stderr"], 0)
        self.assertGreater(s["leaked_blocks_stderr"], 0)
        self.assertRegex(self.heapwise("top", t).stdout.splitlines()[2],
                         r"^peak heap \S+ \S+ " + pm + " at ")
        t2 = self.trace("--sample", str(INTERVAL))
        out = self.heapwise("diff", t, t2).stdout
        self.assertRegex(out, r"leaked      \S+ \S+ " + pm + r" -> \S+ \S+ " + pm)
        self.assertRegex(out, r"allocated   \S+ \S+ " + pm + r" -> \S+ \S+ " + pm)
        d = self.json("diff", t, t2)
        self.assertEqual(d["leaked_bytes"]["base_leaked_stderr_bytes"], s["leaked_stderr_bytes"])
        self.assertEqual(d["allocated_bytes"]["base_allocated_samples"], s["allocated_samples"])
        self.assertIn("so an upper bound", self.heapwise("top", t, "--by", "temporary").stdout)

    def test_timeline_series_have_their_intervals(self):
        """A timeline of a sampled trace: each series' live bytes per
        interval with their standard errors and samples (JSON, CSV). spread
        keeps every block to its end, so in the last interval each series
        holds what `top` says it leaked, with the same standard error."""
        t = self.trace("--sample", str(INTERVAL))
        out = os.path.join(self.dir, "t.json")
        self.heapwise("timeline", t, "--group-by", "function", "-n", "20", "-o", out)
        with open(out) as f:
            doc = json.load(f)
        self.assertEqual(doc["sample_interval"], INTERVAL)
        rows = self.rows(t)
        seen = 0
        for s in doc["series"]:
            self.assertEqual(len(s["live_stderr_bytes"]), len(s["live_bytes"]))
            self.assertEqual(len(s["live_samples"]), len(s["live_bytes"]))
            f = s["callsite"]["frames"][0]["function"] if s["callsite"]["frames"] else None
            if f in ("spread_small", "spread_quarter", "spread_one"):
                r = rows[f]
                self.assertEqual(s["live_bytes"][-1], r["leaked_bytes"], f)
                self.assertLessEqual(abs(s["live_stderr_bytes"][-1] - r["leaked_stderr_bytes"]), 1, f)
                self.assertEqual(s["live_samples"][-1], r["leaked_samples"], f)
                self.assertGreater(r["leaked_samples"], 5, f)
                seen += 1
        self.assertEqual(seen, 3)
        # CSV: the standard errors after the values, one column a series
        out = os.path.join(self.dir, "t.csv")
        p = self.heapwise("timeline", t, "--group-by", "function", "-n", "20", "-o", out)
        self.assertIn("sampled every 16.0 KiB", p.stderr)
        with open(out, newline="") as f:
            table = list(csv.reader(f))
        n = len(doc["series"])
        self.assertEqual(len(table[0]), 2 + 2 * n)
        for k, s in enumerate(doc["series"]):
            self.assertEqual(table[0][2 + n + k], s["label"] + " (stderr bytes)")
            self.assertEqual(int(table[-1][2 + n + k]), s["live_stderr_bytes"][-1])

    def test_kind_table_has_its_intervals(self):
        """The summary's table by allocator kind: under each row of a
        sampled trace the 95% half-widths of its figures, column under
        column; the JSON's kinds their standard errors. spread holds every
        kept block to its end and mallocs only, so the malloc row's live and
        at-peak spreads are the heap's leaked and peak ones."""
        t = self.trace("--sample", str(INTERVAL))
        s = self.json("summary", t)
        m = s["kinds"]["malloc"]
        self.assertEqual(m["live_at_peak_stderr_bytes"], s["peak_stderr_bytes"])
        self.assertEqual(m["live_at_peak_samples"], s["peak_samples"])
        self.assertEqual(m["live_stderr_bytes"], s["leaked_stderr_bytes"])
        self.assertEqual(m["allocated_stderr_bytes"], s["allocated_stderr_bytes"])
        self.assertEqual(m["allocations_stderr"], s["allocations_stderr"])
        self.assertGreater(m["live_samples"], 5)
        text = self.heapwise("summary", t).stdout.splitlines()
        head = next(i for i, l in enumerate(text) if l.startswith("  allocator"))
        self.assertTrue(text[head + 1].startswith("  malloc "), text[head + 1])
        pm = text[head + 2]
        for col in ("allocations", "allocated", "at peak", "live at end"):
            # each cell ends where its heading does
            end = text[head].index(col) + len(col)
            self.assertNotEqual(pm[end - 1], " ", (col, pm))
            self.assertIn(pm[end:end + 1], ("", " "), (col, pm))
        half = 1.96 * s["peak_stderr_bytes"] / 1024
        cells = pm.split("\u00b1")
        self.assertEqual(len(cells), 5, pm)
        self.assertAlmostEqual(float(cells[3].split()[0]), half, delta=0.1 + half * 0.001)
        self.assertNotIn("\u00b1", self.heapwise("summary", self.trace()).stdout)

    def test_collection_marks_have_their_intervals(self):
        """A collection's marker on a sampled trace: the live bytes at it and
        the bytes the collection took away, each with its standard error and
        samples (JSON), the freed bytes' 95% interval on the SVG's label;
        over many runs of gc_three.py the exact freed bytes lie inside the
        printed interval (it errs wide: a block made and freed inside a
        collection counts though it cancels)."""
        script = os.path.join(os.path.dirname(__file__), "py", "gc_three.py")
        env = {"HW_GC_OUT": os.path.join(self.dir, "gc.txt")}

        def gc_ends(trace):
            out = os.path.join(self.dir, "gc.json")
            self.heapwise("timeline", trace, "-o", out)
            with open(out) as f:
                return [m for m in json.load(f)["marks"] if m["kind"] == "gc-end"]

        _, _, exact = self.run_traced([sys.executable, script], "--no-compress", env=env)
        # gc_three's three collections, by their labels (what each found)
        big = [m for m in gc_ends(exact[0]) if m["freed_bytes"] > 1_000_000]
        self.assertEqual(len(big), 3)
        self.assertNotIn("freed_stderr_bytes", big[0])
        truth = [(m["label"], m["freed_bytes"]) for m in big]
        runs = 30
        loop = f'i=0; while [ $i -lt {runs} ]; do "$1" "$2"; i=$((i+1)); done'
        _, _, traces = self.run_traced(["sh", "-c", loop, "sh", sys.executable, script],
                                       "--no-compress", "--sample", "64K", env=env, timeout=300)
        inside = n = 0
        for t in traces:
            ends = gc_ends(t)
            got = []
            for label, _ in truth:  # the first of its label after the previous one
                k = next((i for i, m in enumerate(ends) if m["label"] == label), None)
                if k is not None:
                    got.append(ends[k])
                    ends = ends[k + 1:]
            if not got:
                continue  # the shell
            python_trace = t
            self.assertEqual(len(got), 3, (t, [m["label"] for m in gc_ends(t)], truth))
            for m, (_, exact_bytes) in zip(got, truth):
                self.assertIn("live_stderr_bytes", m)
                self.assertGreater(m["freed_samples"], 0)
                n += 1
                inside += abs(m["freed_bytes"] - exact_bytes) <= 1.96 * m["freed_stderr_bytes"]
        self.assertEqual(n, 3 * runs)
        self.assertGreaterEqual(inside / n, binomial_bounds(n)[0], (inside, n))
        svg = os.path.join(self.dir, "gc.svg")
        self.heapwise("timeline", python_trace, "-o", svg)
        with open(svg) as f:
            labels = re.findall(r"gc gen 2: [^<]*", f.read())
        self.assertTrue(labels)
        for label in labels:
            self.assertRegex(label, r"^gc gen 2: \d+ collected, \S+ \S+ \u00b1 \S+ \S+ "
                             r"\(\d+ samples?(, unreliable)?\) freed$")

    def test_exact_traces_show_no_intervals(self):
        t = self.trace()
        self.assertNotIn("\u00b1", self.heapwise("top", t).stdout)
        self.assertNotIn("\u00b1", self.heapwise("summary", t).stdout)
        doc = self.json("top", t)
        self.assertNotIn("peak_stderr_bytes", doc["callsites"][0])
        out = os.path.join(self.dir, "t.json")
        self.heapwise("timeline", t, "-o", out)
        with open(out) as f:
            self.assertNotIn("live_stderr_bytes", json.load(f)["series"][0])
        self.assertNotIn("peak_stderr_bytes", self.json("summary", t))

    def test_check_of_an_estimate_without_samples_gives_the_bytes_it_may_miss(self):
        # spread leaks 4.9 MiB: at one sample per 64 GiB none is sampled
        # (chance of one: 1 in 13,000) and the estimate is 0 B with no
        # variance; the 95% interval still reaches ln(20) intervals (B bytes
        # go unsampled with chance exp(-B / interval)), so a 1-byte limit
        # passes on the estimate but may be over it (before: "interval 0 B to
        # 0 B: under the limit at 95%")
        t = self.trace("--sample", "64G")
        p = self.heapwise("check", t, "--allow-sampled", "--max-leaked", "1")
        self.assertIn("PASS  max-leaked       0 B (0 B)", p.stdout)
        self.assertIn("95% interval 0 B to 191.7 GiB: the limit is inside the interval: "
                      "may be over it", p.stdout)
        p = self.heapwise("check", t, "--allow-sampled", "--max-leaked", "200G")
        self.assertIn("under the limit at 95%", p.stdout)

    def test_check_gives_the_interval_and_fails_on_the_estimate(self):
        t = self.trace("--sample", str(INTERVAL))
        s = self.json("summary", t)
        peak, se = s["peak_bytes"], s["peak_stderr_bytes"]
        self.assertGreater(se, 0)
        # a limit just under the estimate, inside its interval: fails
        # (the estimate is checked), and says the run may be under it
        p = self.heapwise("check", t, "--allow-sampled", "--max-peak", str(peak - 1), status=1)
        self.assertIn("FAIL  max-peak", p.stdout)
        self.assertIn("95% interval", p.stdout)
        self.assertIn("the limit is inside the interval: may be under it", p.stdout)
        # a limit just over it: passes, and may be over it
        p = self.heapwise("check", t, "--allow-sampled", "--max-peak", str(peak + 1))
        self.assertIn("PASS  max-peak", p.stdout)
        self.assertIn("may be over it", p.stdout)
        # far below the interval's lower bound: over the limit at 95%
        p = self.heapwise("check", t, "--allow-sampled", "--max-peak",
                          str(int(peak - 3 * se)), status=1)
        self.assertIn("over the limit at 95%", p.stdout)
        p = self.heapwise("check", t, "--allow-sampled", "--max-peak", str(int(peak + 3 * se)))
        self.assertIn("under the limit at 95%", p.stdout)


if __name__ == "__main__":
    main()
