"""Reports people look at, on real traces: pprof decodes (protoc, and a wire
parser here) with the right totals; folded stacks add up to the summary."""
import gzip
import os
import shutil
import subprocess

from helpers import TraceTest, main

PY = "/usr/bin/python3.11"


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


if __name__ == "__main__":
    main()
