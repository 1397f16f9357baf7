"""Reports that stay fast and never wait, on crafted traces (make_scale): no
report command is super-linear in the events, stacks, mappings or modules of
a trace, and nothing a trace names (a module path, a debug link) can make the
analyzer wait. Scaling is checked without a timed limit: the same command on
a trace of N and of 4N runs in one test, and a linear command takes about 4
times as long, a quadratic one 16 (the limit, 9, leaves room for a busy
host; each size's fastest of three runs counts)."""
import json
import os
import resource
import shutil
import subprocess

from helpers import HEAPWISE, PROGS, TraceTest, main

MAKE = os.path.join(PROGS, "make_scale")
WAIT = 60  # a command that waits on a FIFO fails here instead of hanging


def cpu_time(argv):
    """CPU seconds (user + system) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise AssertionError(f"{argv} failed: {p.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class Scaling(TraceTest):
    LIMIT = 9  # linear: 4; quadratic: 16

    def ratio(self, kind, n, cmd, extra=()):
        """CPU time of `heapwise CMD` on a make_scale trace of 4n over one of
        n (each the fastest of three runs)."""
        times = []
        for size in (n, 4 * n):
            trace = os.path.join(self.dir, f"{kind}{size}.hwt")
            subprocess.run([MAKE, kind, str(size), trace, *extra], check=True)
            argv = [HEAPWISE, *cmd(trace, os.path.join(self.dir, "out"))]
            times.append(min(cpu_time(argv) for _ in range(3)))
            os.unlink(trace)
        return times[1] / max(times[0], 0.02)

    def check(self, kind, n, cmds, extra=()):
        for name, cmd in cmds:
            with self.subTest(command=name):
                r = self.ratio(kind, n, cmd, extra)
                self.assertLess(r, self.LIMIT, f"{name} on {kind}: 4x the input took {r:.1f}x")

    def test_a_deep_chain_of_python_stacks(self):
        """Every depth of a Python stack 80,000 frames deep allocates: the
        leak filter once walked each stack to its root."""
        self.check("chain", 20000, [("summary", lambda t, o: ["summary", t]),
                                    ("leaks", lambda t, o: ["leaks", t])])

    def test_many_small_mappings(self):
        """100,000 one-page mmaps placed top-down, then unmapped: the
        mappings were a sorted array that moved its tail at every one."""
        self.check("mmaps", 25000, [("summary", lambda t, o: ["summary", t])])

    def test_many_stacks(self):
        """A trace of 160,000 distinct Python stacks against 40,000: the
        timeline looked each stack up in a list of all of them (12x)."""
        o = lambda ext: os.path.join(self.dir, "out" + ext)
        self.check("leaves", 40000, [
            ("timeline", lambda t, _: ["timeline", t, "-o", o(".json")]),
            ("timeline by line", lambda t, _: ["timeline", t, "--group-by", "line", "-o", o(".svg")]),
            ("summary", lambda t, _: ["summary", t]),
            ("top by file", lambda t, _: ["top", "--group-by", "file", t]),
            ("flamegraph", lambda t, _: ["flamegraph", t, "-o", o(".html")]),
        ])

    def test_a_frame_with_many_children(self):
        """120,000 functions called from one line: the flame graph found a
        frame's child by a scan of its children (4x the input took 17x)."""
        o = lambda ext: os.path.join(self.dir, "out" + ext)
        self.check("wide", 30000, [
            ("flamegraph", lambda t, _: ["flamegraph", t, "-o", o(".html")]),
            ("folded", lambda t, _: ["export", t, "--format", "folded", "-o", o(".folded")]),
        ])

    def test_many_libraries(self):
        """20,000 libraries, a frame in each at one offset: the symbolizer
        looked each file up in a list of the ones open, and its frame cache
        put every such frame in one probe run (4x the input took 12.7x)."""
        o = lambda ext: os.path.join(self.dir, "out" + ext)
        self.check("modules", 5000, [
            ("summary", lambda t, _: ["summary", t]),
            ("export json", lambda t, _: ["export", t, "--format", "json", "-o", o(".json")]),
        ])

    def test_diff_of_deep_stacks(self):
        """diff keyed each row by the text of its whole stack (up to 1,024
        frames): a 460 KB trace of a Python chain 20,000 frames deep took 47 s
        and 3.4 GB; its rows are now keyed by a hash kept per stack node, and
        diff (two traces) stays within a few times summary (one trace)."""
        trace = os.path.join(self.dir, "chain.hwt")
        subprocess.run([MAKE, "chain", "20000", trace], check=True)
        summary = min(cpu_time([HEAPWISE, "summary", trace]) for _ in range(3))
        diff = min(cpu_time([HEAPWISE, "diff", trace, trace]) for _ in range(3))
        self.assertLess(diff / max(summary, 0.02), 12, f"diff {diff:.2f} s, summary {summary:.2f} s")
        for group in ("stack", "line"):  # the trace against itself: nothing grew
            doc = json.loads(subprocess.run([HEAPWISE, "diff", "--json", "--group-by", group,
                                             trace, trace], capture_output=True, text=True,
                                            check=True).stdout)
            self.assertTrue(doc["callsites"])
            for c in doc["callsites"]:
                self.assertEqual(c["delta"], {"peak_bytes": 0, "leaked_bytes": 0,
                                              "allocated_bytes": 0})
                self.assertEqual(c["base"], c["new"])

    def test_dlopen_dlclose_cycles(self):
        """20,000 loads of one library at one address against 5,000: every
        frame looked its module up among all the loads (18x)."""
        lib = os.path.join(PROGS, "dlib.so")
        self.check("dlopen", 5000, [
            ("top by function", lambda t, _: ["top", "--group-by", "function", t]),
            ("top", lambda t, _: ["top", t]),
        ], extra=[lib])


class SharedSymbols(TraceTest):
    def test_each_library_is_read_once_for_a_tree(self):
        """The processes of a tree share their libraries' symbol sessions:
        each process's symbolizer opened and parsed libc again (about 17 MB
        apiece with its debug information: 40 small traces took 621 MB, one
        took 20 MB)."""
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        _, _, traces = self.run_traced(["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do /bin/sh -c :; done"])
        self.assertGreaterEqual(len(traces), 9)
        log = os.path.join(self.dir, "strace.log")
        env = dict(os.environ)  # LeakSanitizer (an ASan build) cannot run under ptrace
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", log, HEAPWISE, "summary",
                            *traces], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(log) as f:
            opened = [line for line in f if "O_PATH" in line and "libc.so" in line]
        self.assertEqual(len(opened), 1, "".join(opened))


class NeverWaits(TraceTest):
    def make(self, *args):
        subprocess.run([MAKE, *args], check=True)

    def report(self, trace, *cmd):
        p = subprocess.run([HEAPWISE, *cmd, trace], capture_output=True, text=True,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_module_path_naming_a_fifo(self):
        fifo = os.path.join(self.dir, "libfifo.so")
        os.mkfifo(fifo)
        trace = os.path.join(self.dir, "t.hwt")
        self.make("module", "0x1234", trace, fifo)
        for cmd in (["top"], ["summary"], ["leaks"], ["top", "--group-by", "function"]):
            p = self.report(trace, *cmd)
        self.assertIn("cannot read " + fifo + ": not a regular file", p.stderr)
        p = self.report(trace, "top")
        self.assertIn("?? (libfifo.so+0x1234)", p.stdout)

    def test_debug_link_naming_a_fifo(self):
        """A library with its debug information split off into a file
        beside it: read from there; the same name as a FIFO is passed
        over."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc or not shutil.which("objcopy") or not shutil.which("nm"):
            self.skipTest("needs a C compiler and binutils")
        src = os.path.join(self.dir, "split.c")
        lib = os.path.join(self.dir, "libsplit.so")
        with open(src, "w") as f:
            f.write("#include <stdlib.h>\nvoid *split_alloc(size_t n)\n{\n"
                    "\tvoid *p = malloc(n);\n\treturn p;\n}\n")
        subprocess.run([cc, "-g", "-O0", "-shared", "-fPIC", "-o", lib, src], check=True)
        sym = subprocess.run(["nm", lib], capture_output=True, text=True,
                             check=True).stdout
        off = next(int(line.split()[0], 16) for line in sym.splitlines()
                   if line.endswith(" split_alloc"))
        debug = lib + ".debug"
        subprocess.run(["objcopy", "--only-keep-debug", lib, debug], check=True)
        subprocess.run(["objcopy", "--strip-debug", "--remove-section=.note.gnu.build-id",
                        "--add-gnu-debuglink=" + debug, lib], check=True)
        trace = os.path.join(self.dir, "t.hwt")
        self.make("module", hex(off + 9), trace, lib)
        # the debug file beside the library names the source line
        out = self.report(trace, "top").stdout
        self.assertIn("split_alloc (" + src + ":", out)
        os.unlink(debug)
        os.mkfifo(debug)
        p = self.report(trace, "top")
        self.assertIn("split_alloc (libsplit.so+0x", p.stdout)  # the symbol, no line

    def test_a_debuginfod_server_is_not_asked(self):
        """DEBUGINFOD_URLS in the environment (set by Debian's and Ubuntu's
        profiles): libdw asked its servers for every library without local
        debug information, each request up to DEBUGINFOD_TIMEOUT (a report
        of f_numpy's trace took 68 s against a server that never answered).
        Reports leave it unset; HEAPWISE_DEBUGINFOD=1 lets libdw ask."""
        import select
        import socket
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("needs a C compiler")
        src = os.path.join(self.dir, "nodebug.c")
        lib = os.path.join(self.dir, "libnodebug.so")
        with open(src, "w") as f:
            f.write("#include <stdlib.h>\nvoid *nd_alloc(size_t n) { return malloc(n); }\n")
        subprocess.run([cc, "-O0", "-shared", "-fPIC", "-Wl,--build-id", "-o", lib, src],
                       check=True)
        trace = os.path.join(self.dir, "t.hwt")
        self.make("module", "0x1100", trace, lib)
        server = socket.socket()  # listens, never accepts: a request waits
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        self.addCleanup(server.close)
        env = dict(os.environ, DEBUGINFOD_URLS="http://127.0.0.1:%d" % server.getsockname()[1],
                   DEBUGINFOD_TIMEOUT="1",
                   DEBUGINFOD_CACHE_PATH=os.path.join(self.dir, "dcache"))
        env.pop("HEAPWISE_DEBUGINFOD", None)

        def asked(extra):
            p = subprocess.run([HEAPWISE, "top", trace], capture_output=True, text=True,
                               timeout=WAIT, env=dict(env, **extra))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("libnodebug.so", p.stdout)
            return bool(select.select([server], [], [], 0)[0]), p.stderr  # a connection waits

        self.assertFalse(asked({})[0], "a report asked the debuginfod server")
        # a value other than 0 or 1: named in one line, not asked
        waited, err = asked({"HEAPWISE_DEBUGINFOD": "yes"})
        self.assertFalse(waited)
        self.assertIn("HEAPWISE_DEBUGINFOD=yes: expected 0 or 1", err)
        self.assertTrue(asked({"HEAPWISE_DEBUGINFOD": "1"})[0], "HEAPWISE_DEBUGINFOD=1 did not ask")

    def test_trace_that_is_a_fifo(self):
        fifo = os.path.join(self.dir, "t.hwt")
        os.mkfifo(fifo)
        p = subprocess.run([HEAPWISE, "summary", fifo], capture_output=True, text=True,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a regular file", p.stderr)


if __name__ == "__main__":
    main()
