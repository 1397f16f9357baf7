"""The CI gate: `heapwise check` on Python and C programs (limits, leak
definition, suppressions, JUnit, markers, exit codes) and the pytest plugin."""
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

from helpers import HEAPWISE, PROGS, TraceTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3.11"
TOOLS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools")


def line_of(path, tag):
    with open(path) as f:
        return next(n for n, line in enumerate(f, 1) if tag in line)


class Check(TraceTest):
    def leaky(self, *args):
        script = os.path.join(HERE, "py", "leaky.py")
        _, _, traces = self.run_traced([PY, script, *args])
        return traces[0], script

    def test_leak_fails_fixed_passes_suppressed_passes(self):
        trace, script = self.leaky()
        p = self.heapwise("check", trace, "--max-leaked", "100K", status=1)
        self.assertIn(f"leaky.py:{line_of(script, 'LINE-LEAK')} handle", p.stdout)
        self.assertIn("FAIL  max-leaked", p.stdout)
        fixed, _ = self.leaky("--fixed")
        p = self.heapwise("check", fixed, "--max-leaked", "100K", "--max-peak", "64M", status=0)
        self.assertIn("PASS  max-leaked", p.stdout)
        sup = os.path.join(self.dir, "sup.txt")
        with open(sup, "w") as f:
            f.write("# known: the request cache\nleak:leaky.py\n")
        p = self.heapwise("check", trace, "--max-leaked", "100K", "--suppressions", sup, status=0)
        self.assertRegex(p.stdout, r"leak:leaky.py matched \d+ blocks")
        # the window between the script's own markers finds the same leak
        p = self.heapwise("check", trace, "--max-leaked", "100K", "--between", "requests-start",
                          "requests-end", status=1)
        self.assertIn('marker "requests-end"', p.stdout)

    def test_python_leak_definition(self):
        trace, _ = self.leaky("--fixed")
        s = self.json("summary", trace)
        self.assertTrue(s["python"])
        self.assertEqual(s["leak_point"], "the start of Python's finalization")
        self.assertLess(s["leaked_bytes"], 50_000)
        everything = self.json("summary", trace, "--include-all")
        self.assertGreater(everything["leaked_bytes"], 10 * s["leaked_bytes"])
        leaks = self.json("leaks", trace, "-n", "1000")
        for c in leaks["callsites"]:
            files = [f["file"] or "" for f in c["frames"] if f["kind"] == "python"]
            self.assertTrue(files, c)
            self.assertFalse(any(f.startswith("<frozen importlib._bootstrap") for f in files))

    def test_gate_without_python_frames_is_native(self):
        # An interpreter the shim has no layout for (3.10: heapwise supports
        # 3.11 and later) records native stacks only. The Python leak
        # definition would keep nothing and pass the gate on a 3 MiB leak;
        # such a trace is judged by the native one, and says why.
        python = "/root/.pyenv/versions/3.10.13/bin/python3.10"
        if not os.path.exists(python):
            self.skipTest(f"{python} (an interpreter without a layout) is not installed")
        script = os.path.join(HERE, "py", "refleak.py")
        _, err, traces = self.run_traced([python, script])
        self.assertIn("Python 3.10: Python frames are off (no layout for Python 3.10", err)
        p = self.heapwise("check", traces[0], "--max-leaked", "1M", status=1)
        self.assertIn("FAIL  max-leaked", p.stdout)
        self.assertIn("3.0 MiB    in 1 block", p.stdout)
        self.assertIn("Python frames were off (no layout for Python 3.10", p.stderr)
        s = self.json("summary", traces[0])
        self.assertFalse(s["python_frames"])
        self.assertIn("no layout for Python 3.10", s["python_frames_off"])
        self.assertGreaterEqual(s["leaked_bytes"], 3 << 20)
        p = self.heapwise("leaks", traces[0])
        self.assertNotIn("(no callsites)", p.stdout)
        p = self.heapwise("summary", traces[0])
        self.assertIn("Python frames OFF: no layout for Python 3.10", p.stdout)

    def test_junit_and_errors(self):
        trace, _ = self.leaky()
        junit = os.path.join(self.dir, "junit.xml")
        self.heapwise("check", trace, "--max-leaked", "100K", "--max-peak", "1G",
                      "--max-allocations", "100000000", "--junit", junit, status=1)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual(suite.get("tests"), "3")
        self.assertEqual(suite.get("failures"), "1")
        failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
        self.assertEqual(len(failed), 1)
        self.assertTrue(failed[0].get("name").startswith("max-leaked"))
        self.assertIn("leaky.py", failed[0].find("failure").text)
        damaged = os.path.join(self.dir, "damaged.hwt")
        with open(trace, "rb") as f, open(damaged, "wb") as g:
            g.write(f.read(100))
        self.heapwise("check", damaged, "--max-leaked", "1M", status=2)
        self.heapwise("check", trace, status=2)  # no limit
        self.heapwise("check", trace, "--max-peak", "lots", status=2)
        self.heapwise("check", trace, "--max-leaked", "1M", "--suppressions", "/nonexistent",
                      status=2)
        self.heapwise("check", trace, "--max-leaked", "1M", "--between", "nope", "never",
                      status=2)

    def test_diff_between_runs(self):
        fixed, script = self.leaky("--fixed")
        leaking, _ = self.leaky()
        doc = self.json("diff", fixed, leaking, "--group-by", "line")
        top = doc["callsites"][0]
        self.assertEqual(top["frames"][0]["line"], line_of(script, "LINE-LEAK"))
        self.assertIsNone(top["base"])  # the line allocates nothing in the fixed run
        self.assertGreater(top["delta"]["leaked_bytes"], 1_000_000)
        self.assertGreater(doc["peak_growth_pct"], 10)
        p = self.heapwise("diff", fixed, leaking, "--max-peak-growth", "10", status=1)
        self.assertIn("FAIL: peak growth", p.stdout)
        self.assertIn(f"leaky.py:{line_of(script, 'LINE-LEAK')} handle", p.stdout)
        again, _ = self.leaky("--fixed")
        self.heapwise("diff", fixed, again, "--max-peak-growth", "25", status=0)
        self.heapwise("diff", fixed, status=2)
        self.heapwise("diff", fixed, leaking, "--max-peak-growth", "lots", status=2)

    def test_c_markers(self):
        r = subprocess.run([self.prog("marks")])
        self.assertEqual(r.returncode, 5)  # runs without the shim
        _, _, traces = self.run_traced([self.prog("marks")])
        doc = self.json("leaks", traces[0], "--between", "phase-start", "phase-end")
        self.assertEqual([c["leaked_bytes"] for c in doc["callsites"]], [4321])
        self.assertEqual(doc["callsites"][0]["frames"][0]["function"], "leak_in_window")


class Stopped(TraceTest):
    """A trace whose recording stopped early (a limit, a file the process
    can no longer open) holds the figures up to the stop: `check` must not
    judge them (exit 2, the reason), unless --allow-incomplete."""

    def keep(self, *args, env=None):
        _, err, traces = self.run_traced([PY, os.path.join(HERE, "py", "keep_burst.py"), *args],
                                         env=env)
        self.assertEqual(len(traces), 1, err)
        return traces[0], err

    def refused(self, trace, why):
        p = self.heapwise("check", trace, "--max-peak", "50M", status=2)
        self.assertNotIn("PASS", p.stdout)
        self.assertRegex(p.stderr, r"recording stopped at \d+\.\d{3} s: " + why +
                         r": figures are up to then")
        self.assertIn("--allow-incomplete", p.stderr)
        return p

    def test_size_cap(self):
        # the program keeps ~45 MiB; the trace's 1 MiB holds a part of it,
        # whose peak passed --max-peak 50M (exit 0) before
        trace, _ = self.keep(env={"HEAPWISE_MAX_SIZE": "1M"})
        self.refused(trace, r"the trace reached its size cap \(HEAPWISE_MAX_SIZE, 1\.0 MiB\)")
        p = self.heapwise("check", trace, "--max-peak", "50M", "--allow-incomplete")
        self.assertIn("note: recording stopped at", p.stdout)
        self.assertIn("PASS  max-peak", p.stdout)
        self.heapwise("check", trace, "--max-peak", "1K", "--allow-incomplete", status=1)
        text = self.heapwise("summary", trace).stdout
        self.assertRegex(text, r"recording stopped early\n  stopped     recording stopped at "
                               r"\d+\.\d{3} s: the trace reached its size cap")
        doc = self.json("summary", trace)
        self.assertEqual(doc["recording_stopped"]["reason"], "size_cap")
        self.assertGreater(doc["recording_stopped"]["time_s"], 0)
        self.assertIn("figures are up to then", doc["recording_stopped"]["message"])
        self.assertFalse(doc["clean_exit"])
        dump = self.heapwise("dump", trace).stdout
        self.assertRegex(dump, r"\nstop: reason 1 \(size_cap\), value 1048576, pid \d+: "
                               r"recording stopped at ")
        # every report warns once (stderr)
        p = self.heapwise("top", trace)
        self.assertRegex(p.stderr, r"warning: .*: recording stopped at \d+\.\d{3} s: the trace "
                                   r"reached its size cap")
        self.assertIn("--allow-incomplete", self.heapwise("check", "--help").stdout)
        # a JUnit file counts the refusal as an error
        junit = os.path.join(self.dir, "j.xml")
        self.heapwise("check", trace, "--max-peak", "50M", "--max-leaked", "1G", "--junit", junit,
                      status=2)
        suite = ET.parse(junit).getroot()[0]
        self.assertEqual((suite.get("tests"), suite.get("errors")), ("2", "2"))
        for case in suite.findall("testcase"):
            self.assertIn("recording stopped at", case.find("error").get("message"))

    def test_free_space_reserve_and_an_empty_trace(self):
        # a reserve of the whole filesystem: recording stops at the first
        # chunk, and the trace is its header alone
        trace, err = self.keep(env={"HEAPWISE_MIN_FREE": "100%"})
        self.assertEqual(os.path.getsize(trace), 4096)
        self.refused(trace, r"the filesystem reached the free-space reserve "
                            r"\(HEAPWISE_MIN_FREE, [0-9.]+ [KMGT]iB\)")
        self.assertEqual(self.json("summary", trace)["recording_stopped"]["reason"], "min_free")
        # the same trace without its stop record (a shim before it): no
        # event and no clean exit, nothing to judge either
        with open(trace, "r+b") as f:
            f.seek(4096 - 32)
            f.write(bytes(32))
        self.assertNotIn("recording_stopped", self.json("summary", trace))
        p = self.heapwise("check", trace, "--max-peak", "50M", status=2)
        self.assertIn("holds no events and no clean exit", p.stderr)
        self.assertNotIn("PASS", p.stdout)
        p = self.heapwise("check", trace, "--max-peak", "50M", "--allow-incomplete")
        self.assertIn("PASS  max-peak", p.stdout)

    def test_setuid_drops_the_right_to_reopen(self):
        # the trace is root's (mode 0600); after setuid(65534) the next
        # chunk's reopen fails: the header page, mapped from the start,
        # still takes the stop
        if os.geteuid() != 0:
            self.skipTest("needs root (setuid)")
        trace, err = self.keep("setuid")
        self.assertIn("reopening", err)
        self.refused(trace, r"the trace file could not be reopened \(Permission denied\)")
        self.assertEqual(self.json("summary", trace)["recording_stopped"]["reason"],
                         "reopen_failed")

    def test_a_full_run_is_judged(self):
        trace, _ = self.keep()
        self.assertNotIn("recording_stopped", self.json("summary", trace))
        self.heapwise("check", trace, "--max-peak", "50M", status=1)  # ~59 MiB at its peak
        self.heapwise("check", trace, "--max-peak", "100M")


class FollowCommand(TraceTest):
    """`heapwise follow`: the pytest plugin's judge of --between windows."""

    def ask(self, trace, lines):
        """follow's answers, one {part: (rc, out, err)} per request."""
        p = subprocess.run([HEAPWISE, "follow", trace], input="".join(l + "\n" for l in lines).encode(),
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out, pos, answers, cur = p.stdout, 0, [], {}
        while pos < len(out):
            nl = out.index(b"\n", pos)
            head = out[pos:nl].decode().split()
            pos = nl + 1
            if head == ["end"]:
                answers.append(cur)
                cur = {}
                continue
            name, rc, no, ne = head[0], int(head[1]), int(head[2]), int(head[3])
            cur[name] = (rc, out[pos:pos + no].decode(), out[pos + no:pos + no + ne].decode())
            pos += no + ne
        self.assertEqual(len(answers), len(lines))
        return answers

    def test_windows_are_check_between(self):
        """Each window's answer is what `check --between` and `summary --json
        --between` say: peaks and leaks that hold and fail, a leak by another
        thread, a fork's child (its own trace), a start marker not there."""
        script = os.path.join(HERE, "py", "follow_windows.py")
        _, _, traces = self.run_traced([PY, script], "--no-compress")
        trace = max(traces, key=os.path.getsize)
        limits = [(1 << 20, 100), (8 << 20, 1 << 20), (2 << 20, 1000), ("-", 200_000),
                  (4 << 20, "-"), (1000, 10)]
        lines = [f"window\tw{i}-start\tw{i}-end\t{pk}\t{lk}" for i, (pk, lk) in enumerate(limits)]
        answers = self.ask(trace, lines + ["window\tnowhere\tw5-end\t1\t1"])
        verdicts = []
        for i, (pk, lk) in enumerate(limits):
            ans, between = answers[i], ("--between", f"w{i}-start", f"w{i}-end")
            s = self.json("summary", trace, *between)
            self.assertEqual(ans["leaked"][:2], (0, f"{s['leaked_bytes']}\n"))
            if pk != "-":
                p = self.heapwise("check", trace, "--max-peak", str(pk), *between, status=None)
                self.assertEqual(ans["peak"][:2], (p.returncode, p.stdout))
                verdicts.append(p.returncode)
            if lk != "-":
                p = self.heapwise("check", trace, "--max-leaked", str(lk), *between, status=None)
                self.assertEqual(ans["leak"][:2], (p.returncode, p.stdout))
                verdicts.append(p.returncode)
        self.assertIn(0, verdicts)
        self.assertIn(1, verdicts)
        self.assertIn("follow_windows.py", answers[3]["leak"][1])  # the thread's leak
        missing = answers[-1]
        self.assertEqual(missing["peak"][0], 2)
        self.assertIn('marker "nowhere" is not in the trace', missing["peak"][2])

    def test_bad_input(self):
        p = self.heapwise("follow", status=2)
        self.assertEqual(p.stderr.splitlines()[0], "heapwise: error: follow: no trace given")
        p = self.heapwise("follow", "/nonexistent.hwt", status=2)
        self.assertIn("cannot open /nonexistent.hwt", p.stderr)
        fifo = os.path.join(self.dir, "fifo.hwt")  # its open must not wait for a writer
        os.mkfifo(fifo)
        p = subprocess.run([HEAPWISE, "follow", fifo], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is not a regular file", p.stderr)
        _, _, traces = self.run_traced([self.prog("leaks")])
        p = self.heapwise("follow", traces[0], status=2)  # heapwise run compressed it
        self.assertIn("compressed", p.stderr)
        _, _, traces = self.run_traced([self.prog("leaks")], "--no-compress")
        p = subprocess.run([HEAPWISE, "follow", traces[0]], input="window\tA\n", text=True,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^error 2 0 \d+\nheapwise: error: follow: expected: window.*\nend\n$")
        self.assertIn("follow TRACE", self.heapwise("--help").stdout)


class PytestPlugin(TraceTest):
    def session(self, *args, run_flags=(), env=None, src="pt_session.py"):
        env_extra = env
        if subprocess.run([PY, "-c", "import pytest"], capture_output=True).returncode:
            self.skipTest("python3-pytest is not installed")
        src = os.path.join(HERE, "py", src)
        shutil.copy(src, os.path.join(self.dir, "test_mem.py"))
        env = dict(os.environ, PYTHONPATH=TOOLS, HEAPWISE_BIN=HEAPWISE)
        env.update(env_extra or {})
        out = os.path.join(self.dir, "s.%p.hwt")
        p = subprocess.run([HEAPWISE, "run", "-o", out, *run_flags, "--", PY, "-m", "pytest", "-p",
                            "pytest_heapwise", "-p", "no:cacheprovider", "-rf", *args,
                            "test_mem.py"], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=300)
        return p, src

    def failed_tests(self, p):
        return sorted(l.split("::")[1].split()[0] for l in p.stdout.splitlines()
                      if l.startswith("FAILED"))

    def logging_bin(self):
        """A heapwise command that writes its subcommand to a log, one a line."""
        log = os.path.join(self.dir, "calls.log")
        wrapper = os.path.join(self.dir, "hw-logged")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\necho \"$1\" >> {log}\nexec {HEAPWISE} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        return wrapper, log

    def test_one_analyzer_process_per_session(self):
        """The plugin ran `heapwise check --between` (and `summary --json
        --between`) per gated test, each replaying the trace from its start:
        a session's cost grew with the square of its tests. One `heapwise
        follow` judges them all now, whatever their number."""
        wrapper, log = self.logging_bin()
        p, _ = self.session(env={"HEAPWISE_BIN": wrapper})
        self.assertEqual(self.failed_tests(p), ["test_cache_once", "test_hungry",
                                                "test_json_leak", "test_leaking"], p.stdout)
        with open(log) as f:
            self.assertEqual(f.read().split(), ["follow"])

    def test_follower_verdicts_are_checks(self):
        """Each gated test's verdict from the follower is the one `heapwise
        check --between` gives on the same live trace (the plugin asks both
        under HEAPWISE_PLUGIN_CROSSCHECK=1 and fails the test when they
        differ): limits that hold and fail, a leak by another thread, a test
        that forks (its child's memory is in the child's trace)."""
        p, src = self.session(src="pt_follow.py", env={"HEAPWISE_PLUGIN_CROSSCHECK": "1"})
        self.assertNotIn("crosscheck", p.stdout)
        self.assertEqual(self.failed_tests(p), ["test_both_fail", "test_leak_fails",
                                                "test_peak_fails", "test_thread_leak_fails"],
                         p.stdout)
        for tag in ("LINE-FW-PEAK", "LINE-FW-LEAK", "LINE-FW-THREAD"):
            self.assertIn(f"test_mem.py:{line_of(src, tag)} ", p.stdout)
        self.assertNotIn("follower stopped", p.stdout)
        # --heapwise-repeat: a window per run, each run's leak from the follower
        p, _ = self.session("--heapwise-repeat", "3", env={"HEAPWISE_PLUGIN_CROSSCHECK": "1"})
        self.assertNotIn("crosscheck", p.stdout)
        self.assertEqual(self.failed_tests(p), ["test_hungry", "test_json_leak", "test_leaking"])

    def test_a_killed_follower_falls_back_to_check(self):
        """The follower killed half-way: the session does not hang, says so
        once, and judges the tests after it with a check per test."""
        wrapper, log = self.logging_bin()
        p, _ = self.session(src="pt_follow.py", env={"HW_KILL_FOLLOWER": "1",
                                                     "HEAPWISE_BIN": wrapper})
        self.assertEqual(self.failed_tests(p), ["test_both_fail", "test_leak_fails",
                                                "test_peak_fails", "test_thread_leak_fails"],
                         p.stdout)
        self.assertEqual(p.stdout.count("heapwise: the follower stopped"), 1, p.stdout)
        with open(log) as f:
            calls = f.read().split()
        self.assertEqual(calls[0], "follow")
        self.assertEqual(calls.count("follow"), 1)
        self.assertIn("check", calls)


    def test_right_tests_fail_with_their_lines(self):
        p, src = self.session()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        failed = sorted(l.split("::")[1].split()[0] for l in p.stdout.splitlines()
                        if l.startswith("FAILED"))
        self.assertEqual(failed, ["test_cache_once", "test_hungry", "test_json_leak",
                                  "test_leaking"])
        self.assertIn(f"test_mem.py:{line_of(src, 'LINE-PT-LEAK')} test_leaking", p.stdout)
        self.assertIn(f"test_mem.py:{line_of(src, 'LINE-PT-HUNGRY')} test_hungry", p.stdout)
        # what json.loads allocated is the test's line, not json/decoder.py's
        self.assertIn(f"test_mem.py:{line_of(src, 'LINE-PT-JSON')} test_json_leak", p.stdout)
        self.assertNotIn("decoder.py", p.stdout)
        self.assertIn("limit_memory", p.stdout)

    def test_repeat_ignores_a_cache_filled_once(self):
        p, _ = self.session("--heapwise-repeat", "3")
        failed = sorted(l.split("::")[1].split()[0] for l in p.stdout.splitlines()
                        if l.startswith("FAILED"))
        self.assertEqual(failed, ["test_hungry", "test_json_leak", "test_leaking"])
        self.assertIn("every run of 3 leaked", p.stdout)

    def test_a_sampled_run_says_it_checks_nothing(self):
        """Under heapwise run --sample the plugin gates nothing (one test's
        sampled figures are too noisy for a limit) and says so once in the
        header, instead of failing every gated test on check's refusal."""
        p, _ = self.session(run_flags=("--sample", "64K"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is sampled (HEAPWISE_SAMPLE=65536)", p.stdout)
        self.assertIn("limit_memory and limit_leaks are not checked", p.stdout)
        self.assertNotIn("FAILED", p.stdout)

    def test_stopped_recording_fails_every_gated_test(self):
        """Recording stopped at pytest's start (a 1 MiB cap): the plugin
        said "not running under heapwise" and checked nothing, so every
        gated test passed. Each fails now, with the reason."""
        p, _ = self.session(env={"HEAPWISE_MAX_SIZE": "1M"})
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("not running under heapwise", p.stdout)
        failed = sorted(l.split("::")[1].split()[0] for l in p.stdout.splitlines()
                        if l.startswith("FAILED"))
        self.assertEqual(failed, ["test_cache_once", "test_clean", "test_hungry",
                                  "test_json_leak", "test_leaking"])
        self.assertRegex(p.stdout, r"heapwise cannot check limit_leaks: \S+: recording stopped "
                                   r"at \d+\.\d{3} s: the trace reached its size cap "
                                   r"\(HEAPWISE_MAX_SIZE, 1\.0 MiB\)")
        self.assertIn("heapwise cannot check limit_memory", p.stdout)

    def test_a_child_left_untraced_by_no_follow_says_so(self):
        """A pytest session in a child that `heapwise run --no-follow` leaves
        untraced on purpose (an xdist-like worker): its limits are not
        checked and its header says why; it does not fail its gated tests as
        if the shim had failed to make a trace (the adversarial run adv6)."""
        if subprocess.run([PY, "-c", "import pytest"], capture_output=True).returncode:
            self.skipTest("python3-pytest is not installed")
        shutil.copy(os.path.join(HERE, "py", "pt_session.py"), os.path.join(self.dir, "test_mem.py"))
        env = dict(os.environ, PYTHONPATH=TOOLS, HEAPWISE_BIN=HEAPWISE)
        worker = ("import subprocess, sys; p = subprocess.run([sys.executable, '-m', 'pytest', "
                  "'-p', 'pytest_heapwise', '-p', 'no:cacheprovider', 'test_mem.py'], "
                  "capture_output=True, text=True); print(p.stdout); sys.exit(p.returncode)")
        p = subprocess.run([HEAPWISE, "run", "--no-follow", "-o", os.path.join(self.dir, "w.%p.hwt"),
                            "--", PY, "-c", worker], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("this process is not traced (a child of heapwise run --no-follow)", p.stdout)
        self.assertNotIn("writes no trace", p.stdout)

    def test_a_shim_without_a_trace_fails_every_gated_test(self):
        """The shim is loaded (LD_PRELOAD) but could not make its trace (an
        output directory that does not exist): the plugin said "not running
        under heapwise" and passed every gated test unchecked."""
        if subprocess.run([PY, "-c", "import pytest"], capture_output=True).returncode:
            self.skipTest("python3-pytest is not installed")
        lib = os.path.join(os.environ.get("HW_BUILD", ""), "preload", "libheapwise.so")
        if not os.path.exists(lib):
            self.skipTest("no built shim at " + lib)
        shutil.copy(os.path.join(HERE, "py", "pt_session.py"), os.path.join(self.dir, "test_mem.py"))
        env = dict(os.environ, PYTHONPATH=TOOLS, HEAPWISE_BIN=HEAPWISE, LD_PRELOAD=lib,
                   HEAPWISE_OUTPUT=os.path.join(self.dir, "missing", "t.%p.hwt"))
        p = subprocess.run([PY, "-m", "pytest", "-p", "pytest_heapwise", "-p", "no:cacheprovider",
                            "-rf", "test_mem.py"], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertIn("cannot create trace file", p.stderr)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("the shim is loaded but this process writes no trace", p.stdout)
        failed = [l for l in p.stdout.splitlines() if l.startswith("FAILED")]
        self.assertEqual(len(failed), 5, p.stdout)
        # without the shim: nothing checked, nothing failed (as before)
        del env["LD_PRELOAD"]
        p = subprocess.run([PY, "-m", "pytest", "-p", "pytest_heapwise", "-p", "no:cacheprovider",
                            "test_mem.py"], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("not running under heapwise", p.stdout)

    def test_a_failed_limit_keeps_capture_and_logging(self):
        """The plugin failed a test with pytest.fail inside its
        pytest_runtest_call hookwrapper after the yield: pluggy 1.0 (Debian
        12) then skipped the teardown of the other wrappers, pytest's capture
        and logging: the test's output showed under "Captured stdout
        teardown", its log records were lost, and the progress line lost the
        next test's letter."""
        p, _ = self.session(src="pt_capture.py")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout
        self.assertRegex(out, r"test_mem\.py FF\s")
        self.assertIn("limit_memory: the test allocated more than 1048576 bytes", out)
        big = out[out.index("_ test_big _"):out.index("_ test_next _")]
        self.assertRegex(big, r"Captured stdout call -+\nstdout of test_big\n")
        self.assertRegex(big, r"Captured log call -+\nWARNING .*warning from test_big\n")
        self.assertNotIn("teardown", out)
        self.assertIn("FAILED test_mem.py::test_next - assert False", out)


if __name__ == "__main__":
    main()
