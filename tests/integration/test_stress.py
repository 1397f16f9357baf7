"""The shim under stress: frees across threads, a fork storm while threads
allocate, signal handlers allocating inside malloc, dlopen/dlclose in a loop,
exit() from a thread. Each must finish (no deadlock), keep the program's exit
status, and give exact figures where they are knowable."""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import unittest

from helpers import HEAPWISE, TraceTest, main

PY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "py")
PYTHON = "/usr/bin/python3.11"


def elf_sections(b):
    """{name: (file offset, size)} of an ELF64 file's sections."""
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3a)
    heads = [struct.unpack_from("<IIQQQQIIQQ", b, shoff + i * shentsize) for i in range(shnum)]
    names = heads[shstrndx][4]
    return {bytes(b[names + h[0]:b.index(0, names + h[0])]).decode(): (h[4], h[5])
            for h in heads}


def damage_unwind_info(src, dst, how):
    """Copies the library src to dst with its .eh_frame_hdr table or the
    records it points to damaged (how), as a broken tool or a hand-made
    object may leave them; the code is untouched."""
    with open(src, "rb") as f:
        b = bytearray(f.read())
    off, _ = elf_sections(b)[".eh_frame_hdr"]
    version, _, count_enc, table_enc = b[off:off + 4]
    assert version == 1 and count_enc == 0x03 and table_enc == 0x3b, b[off:off + 4]
    count, = struct.unpack_from("<I", b, off + 8)
    table = off + 12
    entries = [struct.unpack_from("<ii", b, table + 8 * k) for k in range(count)]
    if how == "count":  # a table far longer than its segment
        struct.pack_into("<I", b, off + 8, 0x10000000)
    elif how == "unsorted":  # well formed but out of order: found by no search
        for k, e in enumerate(reversed(entries)):
            struct.pack_into("<ii", b, table + 8 * k, *e)
    for _, fde_rel in entries:
        fde = off + fde_rel  # file offset = address here (one segment)
        length, = struct.unpack_from("<I", b, fde)
        if how == "fde":  # the table's pointer leaves the object
            struct.pack_into("<i", b, table + 8 * entries.index((_, fde_rel)) + 4, 0x40000000)
        elif how == "cie":  # the FDE's CIE pointer leaves the object
            struct.pack_into("<I", b, fde + 4, 0x7ffffff0)
        elif how == "length":  # the FDE's length leaves the object
            struct.pack_into("<I", b, fde, 0x7ffffff0)
        elif how == "loop" and length >= 4 + 4 + 4 + 1 + 11:
            # its first rule a CFA expression whose length wraps the reader
            # back onto that same rule: read for ever, unless checked
            b[fde + 17:fde + 28] = bytes([0x0f]) + bytes([0xf5] + [0xff] * 8 + [0x01])
    with open(dst, "wb") as f:
        f.write(b)


class Stress(TraceTest):
    def test_frees_across_threads(self):
        _, _, traces = self.run_traced([self.prog("xfree")], timeout=300)
        fn = self.by_function(traces[0], by="count")
        self.assertEqual(fn["produce"]["count"], 16 * 20000)
        self.assertEqual(fn["produce"]["allocated_bytes"], 16 * sum(16 + i % 200 for i in range(20000)))
        self.assertEqual(fn["produce"]["leaked_bytes"], 0)
        s = self.json("summary", traces[0])
        self.assertEqual(s["unmatched_frees"], 0)
        self.assertGreaterEqual(s["threads"], 17)

    def test_fork_storm(self):
        _, err, traces = self.run_traced([self.prog("forkstorm"), "200"], timeout=600)
        self.assertEqual(len(traces), 201, err)
        children = 0
        for t in traces:
            fn = self.by_function(t)
            if "child_work" in fn:
                children += 1
                self.assertEqual(fn["child_work"]["leaked_bytes"], 1234, t)
                self.assertTrue(self.json("summary", t)["clean_exit"], t)
        self.assertEqual(children, 200)

    def test_fork_while_a_thread_holds_the_loader_lock(self):
        # glibc's fork leaves the loader lock that dl_iterate_phdr holds
        # held in the child when another thread was inside it: the child
        # never needs it untraced; traced, its first native unwind waited
        # for it for ever, every signal blocked
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self.dir)
        p = subprocess.Popen([HEAPWISE, "run", "-o", os.path.join(run_dir, "t.%p.hwt"), "--",
                              self.prog("dlfork")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            self.fail("the fork child hung")
        self.assertEqual(p.returncode, 0, err)
        traces = sorted(glob.glob(os.path.join(run_dir, "t.*.hwt")))
        self.assertEqual(len(traces), 2, err)
        docs = [self.json("summary", t) for t in traces]
        child = [d for d in docs if d["ppid"] in [o["pid"] for o in docs]]
        self.assertEqual(len(child), 1)
        self.assertGreaterEqual(child[0]["leaked_bytes"], 4321)
        self.assertTrue(child[0]["clean_exit"] or child[0]["events"] >= 1)

    def test_signal_handlers_allocating(self):
        _, _, traces = self.run_traced([self.prog("sigalloc")], timeout=300)
        fn = self.by_function(traces[0], by="count")
        self.assertEqual(fn["main_alloc"]["count"], 2_000_000)
        self.assertEqual(fn["main_alloc"]["leaked_bytes"], 0)
        self.assertGreater(fn["on_alarm"]["count"], 10)

    def test_dlopen_loop(self):
        _, _, traces = self.run_traced([self.prog("dlloop"), self.prog("dlib.so")], timeout=300)
        fn = self.by_function(traces[0], by="count")
        self.assertEqual(fn["dlib_alloc"]["count"], 500)
        self.assertEqual(fn["dlib_alloc"]["allocated_bytes"], 500 * 777)

    def test_exit_from_a_thread(self):
        _, _, traces = self.run_traced([self.prog("thread_exit")], check_status=3)
        s = self.json("summary", traces[0])
        self.assertGreater(s["allocations"], 1000)

    def test_key_destructors_set_again_are_recorded(self):
        # a key destructor that sets its key again (POSIX: another round of
        # destructors, up to 4 in glibc) allocated and freed after the
        # shim's own destructor, which waited one round only, had ended
        # the thread's recording: keyrounds' 64 threads showed 128 of
        # round_alloc's 192 allocations. Now every round but the last is
        # recorded.
        for flags in ([], ["--native"]):
            _, err, traces = self.run_traced([self.prog("keyrounds"), "64"], *flags)
            fns = self.by_function(traces[0], by="allocated")
            self.assertEqual(fns["round_alloc"]["count"], 64 * 3, (flags, err))
            self.assertEqual(fns["round_alloc"]["leaked_bytes"], 0, flags)
            self.assertEqual(fns["round_free"]["count"], 64, flags)
            self.assertEqual(fns["round_free"]["leaked_bytes"], 0, flags)

    def test_main_thread_pthread_exit_leaves_a_clean_exit(self):
        # main calls pthread_exit; the last thread's end calls exit(0) in
        # glibc after that thread's key destructors, which had ended its
        # recording: no trailer could be written ("no clean exit (killed,
        # crashed, ...)"). Now the trailer is written, the leak counted at
        # exit.
        for flags in ([], ["--native"], ["--sample", "1"]):
            _, err, traces = self.run_traced([self.prog("keyrounds"), "8", "last"], *flags)
            doc = self.json("summary", traces[0])
            self.assertTrue(doc["clean_exit"], (flags, err))
            self.assertFalse(doc["truncated"], flags)
            if not flags:
                self.assertEqual(self.by_function(traces[0])["main_keeps"]["leaked_bytes"], 4444)

    def test_a_cancelled_thread_dies_at_its_own_cancellation_point(self):
        # malloc is no cancellation point, but the shim's open, read and
        # close of /proc/self/statm (the RSS, every 10 ms), of the trace
        # (a claim that grows it) and its write of a line are: a thread
        # with a deferred cancel pending died inside malloc, holding the
        # program's mutex (cancelpoint: round 0 in default and --native,
        # round 3 sampled). Now cancellation is off on those paths.
        for flags in ([], ["--native"], ["--sample", "16K"]):
            status, err, _ = self.run_traced([self.prog("cancelpoint"), "30"], *flags,
                                             check_status=None)
            self.assertEqual(status, 0, (flags, err))

    def test_threads_claiming_chunks_while_exit_finishes(self):
        # 16 threads allocating without pause while main calls exit(): a
        # thread that claimed a chunk after exit() had read how many blocks
        # the file holds, and cut it to that, wrote past its end: SIGBUS
        # (1-3 runs of 30 died with 16 KiB chunks). Now the count is sealed
        # when it is read and a later claim fails. 200 runs, each must
        # exit 0 with a readable trace.
        for r in range(200):
            status, err, traces = self.run_traced(
                [self.prog("exitclaim"), "16", str(5000 + (r % 7) * 3000)], "--no-compress",
                env={"HEAPWISE_CHUNK_SIZE": "16384"}, check_status=None)
            self.assertEqual(status, 0, (r, err))
        self.assertNotIn("damaged", self.heapwise("summary", traces[0]).stderr)

    def test_failed_reallocarray_keeps_its_block(self):
        # reallocarray(p, 2^32, 2^32) overflows and fails: p stays alive, and
        # the 1,000 bytes it holds are a leak
        _, _, traces = self.run_traced([self.prog("rarray")])
        fn = self.by_function(traces[0])
        self.assertEqual(fn["keep_me"]["leaked_bytes"], 1000)
        self.assertEqual(fn["keep_me"]["leaked_blocks"], 1)
        self.assertEqual(self.json("summary", traces[0])["unmatched_frees"], 0)

    def test_errno_is_never_changed(self):
        # every call that succeeds leaves errno as it was: first events of
        # threads, chunk claims, a fork child that cannot create its trace,
        # a child of the raw fork system call
        for flags in ([], ["--native"]):
            status, err, _ = self.run_traced([self.prog("errnock")], *flags, check_status=None)
            self.assertNotIn("changed errno", err)
            self.assertEqual(status, 0, err)

    def test_daemon_thread_alive_at_exit(self):
        # CPython starts to finalize while a daemon thread allocates: the
        # finalization mark and the events around it are in order, nothing
        # is damaged (every run was, before)
        for _ in range(3):
            _, err, traces = self.run_traced([PYTHON, os.path.join(PY_DIR, "daemon_exit.py")])
            p = self.heapwise("summary", traces[0], "--json")
            self.assertNotIn("damaged", p.stderr)
            s = json.loads(p.stdout)
            self.assertFalse(s["truncated"], traces[0])
            self.assertTrue(s["clean_exit"])
            self.assertEqual(s["leak_point"], "the start of Python's finalization")

    def test_message_only_on_the_stderr_it_started_with(self):
        # the program closes stderr and opens a data file as fd 2, then its
        # trace is removed: "recording stopped" must not go into the data
        want = "".join(f"data {i}\n" for i in range(0, 100000, 10000))
        data = os.path.join(self.dir, "data.txt")
        _, err, _ = self.run_traced([self.prog("swaperr"), data])
        with open(data) as f:
            self.assertEqual(f.read(), want)
        # the boundary: with stderr left alone the line is there
        _, err, _ = self.run_traced([self.prog("swaperr"), data, "keep"])
        self.assertIn("recording stopped", err)
        with open(data) as f:
            self.assertEqual(f.read(), want)

    def test_message_to_a_broken_pipe_raises_no_sigpipe(self):
        # stderr a pipe whose reader is gone (`prog 2>&1 | head -1`): the
        # shim's "recording stopped" line raised SIGPIPE, which killed a
        # program that never writes there (status -13; 7 untraced). Now
        # the write's SIGPIPE is blocked and taken back.
        lib = os.path.join(os.environ.get("HW_BUILD", ""), "preload", "libheapwise.so")
        env = dict(os.environ, LD_PRELOAD=lib, HEAPWISE_MAX_SIZE="1M",
                   HEAPWISE_OUTPUT=os.path.join(self.dir, "pipe.%p.hwt"))
        r, w = os.pipe()
        os.close(r)
        try:
            p = subprocess.run([self.prog("churn"), "300000", "7"], env=env, stderr=w,
                               stdout=subprocess.DEVNULL, timeout=120)
        finally:
            os.close(w)
        self.assertEqual(p.returncode, 7)
        traces = glob.glob(os.path.join(self.dir, "pipe.*.hwt"))
        self.assertEqual(len(traces), 1)
        s = self.json("summary", traces[0])
        self.assertEqual(s["recording_stopped"]["reason"], "size_cap")

    @unittest.skipUnless(shutil.which("setpriv") and os.geteuid() == 0,
                         "needs root to run the program as another user")
    def test_umask_0777_fork_child_is_traced(self):
        # umask 0777 creates the child's trace with mode 0000: a user who is
        # not root could not reopen it for its chunks, and the child's trace
        # stayed empty without a word
        run_dir = os.path.join(self.dir, "nobody")
        os.mkdir(run_dir)
        os.chmod(self.dir, 0o755)
        os.chmod(run_dir, 0o777)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            HEAPWISE, "run", "-o", os.path.join(run_dir, "t.%p.hwt"), "--",
                            self.prog("umaskfork")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        traces = sorted(glob.glob(os.path.join(run_dir, "t.*.hwt")))
        self.assertEqual(len(traces), 2, p.stderr)
        child = [t for t in traces if "child_alloc" in self.by_function(t)]
        self.assertEqual(len(child), 1, p.stderr)
        fn = self.by_function(child[0])
        self.assertEqual(fn["child_alloc"]["leaked_bytes"], 4321)
        self.assertGreaterEqual(self.json("summary", child[0])["allocations"], 20000)
        self.assertEqual(os.stat(child[0]).st_mode & 0o777, 0o600)

    def test_file_size_limit_is_never_hit(self):
        # ulimit -f: the trace stops growing before the program's file size
        # limit, which would kill the program with SIGXFSZ
        limit = 1 << 20
        import resource
        setlimit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        out = os.path.join(self.dir, "t.%p.hwt")
        # raw (--no-compress): the limit is on the file the shim writes
        p = subprocess.run([HEAPWISE, "run", "-o", out, "--no-compress", "--",
                            self.prog("churn"), "300000", "7"],
                           capture_output=True, text=True, timeout=120, preexec_fn=setlimit)
        self.assertEqual(p.returncode, 7, p.stderr)
        lines = [l for l in p.stderr.splitlines()
                 if l.startswith("heapwise:") and "trace written" not in l
                 and not l.startswith("heapwise: compressed ")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("file size limit", lines[0])
        self.assertIn("recording stopped", lines[0])
        traces = glob.glob(os.path.join(self.dir, "t.*.hwt"))
        self.assertEqual(len(traces), 1)
        self.assertLessEqual(os.path.getsize(traces[0]), limit)
        self.assertGreater(os.path.getsize(traces[0]), limit - 2 * 65536)  # the room is used
        s = self.json("summary", traces[0])
        self.assertGreater(s["allocations"], 1000)
        self.assertLess(s["allocations"], 300000)
        # a limit too small for the header: no trace, the program untouched
        limit = 2048
        p = subprocess.run([HEAPWISE, "run", "-o", os.path.join(self.dir, "u.%p.hwt"), "--",
                            self.prog("churn"), "1000", "7"],
                           capture_output=True, text=True, timeout=120, preexec_fn=setlimit)
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertIn("file size limit", p.stderr)

    def test_children_made_without_atfork(self):
        # the raw fork system call, _Fork() and clone(fn, stack, SIGCHLD)
        # run no atfork handler: the child must still never touch its
        # parent's chunks or file (with exit() it truncated the file and the
        # parent died of SIGBUS; with _exit() the two wrote into the same
        # chunks), and gets a trace of its own
        for how in ("syscall", "_Fork", "clone"):
            for end in ("exit", "_exit"):
                _, err, traces = self.run_traced([self.prog("rawfork"), how, end])
                self.assertEqual(len(traces), 2, (how, end, err))
                fns = [self.by_function(t, by="count") for t in traces]
                parent = [f for f in fns if "parent_work" in f]
                child = [f for f in fns if "child_work" in f]
                self.assertEqual(len(parent), 1, (how, end))
                self.assertEqual(len(child), 1, (how, end))
                self.assertEqual(parent[0]["parent_work"]["count"], 200000, (how, end))
                self.assertNotIn("child_work", parent[0])
                self.assertEqual(child[0]["child_work"]["count"], 50001, (how, end))
                self.assertNotIn("parent_work", child[0])
                for t, f in zip(traces, fns):
                    p = self.heapwise("summary", "--json", t)
                    self.assertNotIn("damaged", p.stderr, (how, end))
                    if "parent_work" in f or end == "exit":  # _exit writes no trailer
                        self.assertTrue(json.loads(p.stdout)["clean_exit"], (how, end, t))
        # a vfork child shares its parent's memory: calling exit() there
        # (wrong, but done) must not end the parent's recording. (It runs
        # the parent's exit handlers and destructors, which glibc then never
        # runs again; the shim's thread_local destructor, which the child's
        # run of its destructor put on the vforking thread's list, writes
        # the parent's trailer at its exit: VforkExit in test_tracer.py.)
        for end in ("exit", "_exit"):
            _, err, traces = self.run_traced([self.prog("rawfork"), "vfork", end])
            self.assertEqual(len(traces), 1, err)
            self.assertEqual(self.by_function(traces[0], by="count")["parent_work"]["count"],
                             200000, end)
            p = self.heapwise("summary", "--json", traces[0])
            self.assertNotIn("damaged", p.stderr)
            self.assertTrue(json.loads(p.stdout)["clean_exit"], end)

    def test_fork_from_a_signal_handler(self):
        # fork is async-signal-safe: a handler that interrupted malloc or
        # free forks, and the child returns into the interrupted code (the
        # shim's, mostly): no crash in the child, no deadlock in the parent,
        # every trace whole
        for how in ("fork", "syscall"):
            for flags in ([], ["--native"]):
                _, err, traces = self.run_traced([self.prog("sigfork"), how], *flags,
                                                 timeout=600)
                self.assertEqual(len(traces), 201, (how, flags, err))
                # the parent's trace is the largest; a sample of children
                # (reading all 201 takes minutes), each trace once: the
                # same trace twice is two process trees
                traces.sort(key=os.path.getsize)
                p = self.heapwise("summary", "--json", traces[-1], *traces[:-1][::20])
                self.assertNotIn("damaged", p.stderr, (how, flags))
                doc = json.loads(p.stdout)
                parent = doc["processes"][0]
                self.assertGreaterEqual(parent["allocations"], 1000000)
                self.assertTrue(parent["clean_exit"], (how, flags))
                self.assertFalse(parent["truncated"], (how, flags))
                for proc in doc["processes"][1:]:  # they end with _exit()
                    self.assertGreaterEqual(proc["allocations"], 100, (how, flags))

    def test_unwinding_through_damaged_unwind_information(self):
        # a library whose .eh_frame_hdr or .eh_frame is damaged (pointers
        # and lengths that leave the object, a rule whose length wraps
        # around) or missing: native unwinding through its frame read
        # unmapped memory (SIGSEGV, in the unwind cache and in libunwind)
        # or looped for ever with the loader's lock held. Now the stack ends
        # at that frame; the program runs as untraced, its allocations all
        # recorded. Well-formed oddities (an unsorted table, no unwind
        # information) give libunwind's stacks (check mode). Without any
        # unwind information libunwind guesses the caller from rbp, and the
        # shim's memory check took address 2 for readable (page 0 was an
        # empty slot of its good pages): a SIGSEGV in most runs, so that
        # library is run several times.
        libs = {"plain": self.prog("cfi_lib.so"), "none": self.prog("cfi_none.so")}
        for how in ("fde", "cie", "length", "loop", "count", "unsorted"):
            libs[how] = os.path.join(self.dir, "cfi_%s.so" % how)
            damage_unwind_info(self.prog("cfi_lib.so"), libs[how], how)
        for how, lib in libs.items():
            modes = [(["--native"], {}), ([], {})] * (4 if how == "none" else 1)
            if how in ("plain", "none", "unsorted"):
                modes.append((["--native"], {"HEAPWISE_UNWIND_CACHE": "check"}))
            for flags, env in modes:
                run_dir = tempfile.mkdtemp(prefix="run-", dir=self.dir)
                p = subprocess.Popen([HEAPWISE, "run", "-o", os.path.join(run_dir, "t.%p.hwt"),
                                      *flags, "--", self.prog("cfiload"), lib],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True,
                                     env=dict(os.environ, **env))
                try:
                    _, err = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.communicate()
                    self.fail("hung: %s %s" % (how, flags))
                self.assertEqual(p.returncode, 0, (how, flags, err))
                if env:
                    self.assertIn(", 0 differed from libunwind's", err, how)
                trace, = glob.glob(os.path.join(run_dir, "t.*.hwt"))
                fn = self.by_function(trace, by="count")
                self.assertEqual(fn["cfi_alloc"]["count"], 1000, (how, flags))
                self.assertEqual(fn["cfi_alloc"]["allocated_bytes"],
                                 sum(1000 + i for i in range(1000)), (how, flags))

    def test_unwinding_through_generated_and_switched_code(self):
        # frames of code made at run time (an anonymous executable page
        # calling back: no object, no unwind information), also while its
        # page is unmapped or not executable, and coroutines on stacks in
        # the thread's stack, the heap and a 16 KiB mapping. libunwind reads
        # the code at a return address that lies in no object (is it a
        # signal trampoline?) unchecked: with the page unmapped, a SIGSEGV
        # in every run under --native (the unwind cache left it those
        # stacks from the first event on; before the cache, in some runs).
        # Now such a stack ends at that frame. A stack whose outermost
        # return address is a word with the top bit set (a greenlet's
        # switched stack under gevent left one): that word read as a
        # Python frame key, whose code object was then read at a wild
        # address: SIGSEGV in every run, --native and default. Now such a
        # stack ends before that word.
        for what, count in (("unmapped", 2000), ("noexec", 2000), ("jit", 2000),
                            ("ctx", 3 * 4000), ("garbage", 2000)):
            want = subprocess.run([self.prog("oddframes"), what], capture_output=True,
                                  text=True, check=True).stdout
            for flags in (["--native"], []):
                status, out, traces = self.run_traced_stdout([self.prog("oddframes"), what],
                                                             *flags)
                self.assertEqual(out, want, (what, flags))
                fn = self.by_function(traces[0], by="count")
                self.assertEqual(fn["leaf_alloc"]["count"], count, (what, flags))
                self.assertEqual(fn["leaf_alloc"]["allocated_bytes"],
                                 count // 2000 * sum(100 + i % 50 for i in range(2000)),
                                 (what, flags))

    def test_library_loaded_while_dlclose_returns(self):
        # dlclose moved the module epoch after the real call returned; a
        # thread that loads a library where the closed one was as soon as
        # the loader's lock is released (dlrace.c: real-time priorities on
        # one CPU make it run at once) and allocates through it from the
        # same call site got the closed library's cached stack nodes: its
        # 2,222 bytes were counted with the first's 1,111 under
        # drace_first.so (4 of 4 runs, both modes). Now the epoch moves
        # before the call too.
        first, second = self.prog("drace_first.so"), self.prog("drace_second.so")
        untraced = subprocess.run([self.prog("dlrace"), first, second], capture_output=True)
        if untraced.returncode == 3:
            self.skipTest("no real-time scheduling here, or the second library landed elsewhere")
        self.assertEqual(untraced.returncode, 0)
        for flags in ([], ["--native"]) * 2:
            status, err, traces = self.run_traced([self.prog("dlrace"), first, second], *flags,
                                                  check_status=None)
            if status == 3:
                continue  # landed elsewhere this time: nothing to compare
            self.assertEqual(status, 0, err)
            doc = self.json("top", traces[0], "-n", "1000")
            got = sorted((c["allocated_bytes"], c["frames"][0]["module"])
                         for c in doc["callsites"] if c["frames"] and
                         c["frames"][0]["function"] in ("first_alloc", "second_alloc"))
            self.assertEqual(got, [(1111, "drace_first.so"), (2222, "drace_second.so")], flags)

    def test_library_loaded_where_glibc_unloaded_a_gconv_module(self):
        # glibc loads iconv's converters (gconv modules) itself and unloads
        # one a few iconv_close calls after its last use, not through
        # dlclose: the module epoch did not move, so the frames of a library
        # loaded where that module was (here the next converter, called from
        # the same place) took the unloaded module's cached stack nodes:
        # HWGB's allocation was counted with HWGA's, under HWGA.so. Now the
        # loader's counters move the epoch before the next native stack.
        gconv = tempfile.mkdtemp(prefix="gconv-", dir=self.dir)
        with open(os.path.join(gconv, "gconv-modules"), "w") as f:
            for m in ("HWGA", "HWGB", "HWGC"):
                os.symlink(self.prog(m + ".so"), os.path.join(gconv, m + ".so"))
                f.write("module INTERNAL %s// %s 1\n" % (m, m))
        env = {"GCONV_PATH": gconv}
        untraced = subprocess.run([self.prog("gconvswap")], env=dict(os.environ, **env))
        if untraced.returncode == 3:
            self.skipTest("glibc did not unload HWGA, or HWGB was not loaded where it was")
        self.assertEqual(untraced.returncode, 0)
        for flags in ([], ["--native"]):
            _, _, traces = self.run_traced([self.prog("gconvswap")], *flags, env=env)
            doc = self.json("top", traces[0], "--by", "allocated", "-n", "1000")
            inits = {}
            for c in doc["callsites"]:
                if c["frames"] and c["frames"][0]["function"] == "gconv_init":
                    m = c["frames"][0]["module"]
                    inits[m] = inits.get(m, 0) + c["allocated_bytes"]
            self.assertEqual(inits, {"HWGA.so": 1111, "HWGB.so": 2222, "HWGC.so": 3 * 3333},
                             flags)

    def test_no_descriptor_of_the_shim(self):
        # a program that closes its descriptors and opens files on those
        # numbers: libunwind's memory-validation pipe sat on fds 3 and 4,
        # and unwinding a frame without unwind information read a byte of
        # the program's input and wrote a byte of memory into its output
        src = os.path.join(self.dir, "in.bin")
        with open(src, "wb") as f:
            f.write(bytes(range(256)))
        out = os.path.join(self.dir, "out.txt")
        for flags in (["--native"], []):
            status, err, traces = self.run_traced([self.prog("fdreuse"), src, out], *flags,
                                                  check_status=None)
            self.assertNotIn("open descriptor", err, flags)
            self.assertEqual(status, 0, err)
            with open(out) as f:
                self.assertEqual(f.read(), "line\n" * 20, flags)
            fn = self.by_function(traces[0], by="count")
            self.assertEqual(fn["nocfi_alloc"]["count"], 2000, flags)

    def test_small_stacks(self):
        # threads with 16 and 24 KiB stacks, a signal handler on a 16 KiB
        # alternate stack calling malloc: they crashed only when traced
        # (16-24 KiB more stack per allocation); now an event near the end
        # of a stack is recorded with a shorter stack or none. altinside: the
        # alternate stack is an array in a frame of the main thread's stack,
        # whose bounds said there was room (stack smashing, SIGABRT, before
        # the shim took the array's bounds from sigaltstack). selfattr:
        # threads whose first call is pthread_getattr_np of themselves
        # (Python 3.14+ at every thread's start, Rust's threads): glibc
        # allocates in it holding the thread's own lock, and the shim's look
        # at the new thread's stack (pthread_getattr_np again) waited for
        # that lock for ever, in every mode (a hang: the timeout, before).
        for flags in ([], ["--native"], ["--sample", "16K"]):
            for what, allocs in (("threads", 8000), ("altstack", 200 * 401),
                                 ("altinside", 200 * 401), ("selfattr", 20 * 8000)):
                if flags[:1] == ["--sample"] and what != "selfattr":
                    continue
                _, err, traces = self.run_traced([self.prog("smallstack"), what], *flags)
                s = self.json("summary", traces[0])
                if flags[:1] == ["--sample"]:
                    self.assertFalse(s["truncated"], (flags, what))
                    continue
                self.assertGreaterEqual(s["allocations"], allocs, (flags, what))
                self.assertEqual(s["unmatched_frees"], 0, (flags, what))
                self.assertFalse(s["truncated"], (flags, what))

    def test_python_threads_with_small_stacks(self):
        # threading.stack_size(32768) with --native
        _, err, traces = self.run_traced([PYTHON, os.path.join(PY_DIR, "small_stack.py")],
                                         "--native")
        doc = self.json("top", traces[0], "--by", "count", "--group-by", "line", "-n", "100000")
        line = [c for c in doc["callsites"] if c["frames"] and c["frames"][0]["line"] == 12
                and c["frames"][0]["file"].endswith("small_stack.py")]
        self.assertEqual(len(line), 1, err)
        self.assertGreaterEqual(line[0]["count"], 4 * 12 * 200)

    def test_stack_use_per_path(self):
        # the shim's stack below the program's frame, per path: under the
        # bounds it checks (HW_STACK_MIN 2 KiB, HW_STACK_NATIVE 8 KiB in
        # preload/tracker.h) with room to spare. Before: 19 KiB with native
        # frames, 3 KiB without.
        def use(*flags):
            if flags:
                _, out, _ = self.run_traced_stdout([self.prog("stackuse")], *flags)
            else:
                out = subprocess.run([self.prog("stackuse")], capture_output=True, text=True,
                                     check=True).stdout
            return {l.split()[0]: int(l.split()[1]) for l in out.splitlines()}
        base = use()
        for flags, bound in ((["--no-native"], 1536), (["--native"], 7 * 1024)):
            traced = use(*flags)
            self.assertEqual(set(traced), set(base))
            for path, n in traced.items():
                self.assertLessEqual(n - base[path], bound, (flags, path, n, base[path]))

    def test_short_lived_threads_cost_their_events(self):
        # 5,000 threads of one allocation each: every thread claimed a whole
        # 64 KiB chunk (328 MB); now about what their records take
        n = 5000
        _, err, traces = self.run_traced([self.prog("tchurn"), str(n)], timeout=600)
        self.assertLess(os.path.getsize(traces[0]), n * 1024 + (1 << 20))
        s = self.json("summary", traces[0])
        self.assertEqual(s["threads"], n + 1)
        self.assertEqual(s["unmatched_frees"], 0)
        fn = self.by_function(traces[0], by="count")
        self.assertEqual(fn["worker_alloc"]["count"], n)
        self.assertEqual(fn["worker_alloc"]["allocated_bytes"],
                         sum(32 + i % 100 for i in range(n)))
        # Python threads
        code = "import threading\nfor _ in range(1000):\n" \
               "    t = threading.Thread(target=lambda: [0] * 100); t.start(); t.join()\n"
        _, err, traces = self.run_traced([PYTHON, "-c", code], timeout=600)
        self.assertLess(os.path.getsize(traces[0]), 1000 * 8192 + (2 << 20))
        self.assertEqual(self.json("summary", traces[0])["threads"], 1001)

    @unittest.skipUnless(os.access("/proc/sys/kernel/ns_last_pid", os.W_OK),
                         "needs root to make the kernel reuse thread ids")
    def test_reused_thread_ids(self):
        # every thread gets the id of the one before (ns_last_pid): threads
        # named by their OS id were merged into one, their chunks chained in
        # the wrong order, and frees came before their allocations
        n = 300
        _, err, traces = self.run_traced([self.prog("tchurn"), str(n), "reuse"], timeout=600)
        s = self.json("summary", traces[0])
        self.assertEqual(s["unmatched_frees"], 0)
        self.assertEqual(s["threads"], n + 1)
        fn = self.by_function(traces[0], by="count")
        self.assertEqual(fn["worker_alloc"]["count"], n * 20001)
        self.assertEqual(fn["worker_alloc"]["leaked_bytes"], 0)

    def test_size_cap(self):
        # HEAPWISE_MAX_SIZE: recording stops, with one line, before the
        # trace passes it; the program runs on untouched
        _, err, traces = self.run_traced([self.prog("churn"), "300000", "7"], "--no-compress",
                                         check_status=7, env={"HEAPWISE_MAX_SIZE": "1M"})
        lines = [l for l in err.splitlines() if l.startswith("heapwise:")
                 and "trace written" not in l
                 and not l.startswith("heapwise: compressed ")]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("HEAPWISE_MAX_SIZE", lines[0])
        self.assertIn("recording stopped", lines[0])
        self.assertLessEqual(os.path.getsize(traces[0]), 1 << 20)
        # and uses the room up to one 64 KiB block: blocks claimed in
        # windows of up to 16 stopped a window short of the cap (640 KiB)
        self.assertGreater(os.path.getsize(traces[0]), (1 << 20) - 2 * 65536)
        s = self.json("summary", traces[0])
        self.assertGreater(s["allocations"], 1000)
        self.assertLess(s["allocations"], 300000)
        # and the trace says so (its header's stop record)
        self.assertEqual(s["recording_stopped"]["reason"], "size_cap")

    def test_program_taking_the_header_page(self):
        # the shim keeps the trace's header page mapped for a stop record: a
        # program that unmaps it and maps its own page there, or protects it
        # read-only, neither gets its page written nor dies when the size
        # cap stops recording (the record goes through the file then)
        for mode in ("reuse", "protect"):
            with self.subTest(mode=mode):
                e = dict(os.environ, HEAPWISE_MAX_SIZE="1M")
                out = os.path.join(self.dir, mode + ".%p.hwt")
                p = subprocess.run([HEAPWISE, "run", "--no-compress", "-o", out, "--",
                                    self.prog("hdrpage"), mode],
                                   capture_output=True, text=True, timeout=120, env=e)
                self.assertEqual(p.returncode, 0, p.stderr)
                trace = [f for f in os.listdir(self.dir) if f.startswith(mode + ".")]
                s = self.json("summary", os.path.join(self.dir, trace[0]))
                self.assertEqual(s["recording_stopped"]["reason"], "size_cap")

    def test_free_space_reserve(self):
        # the trace, preallocated ahead, filled the program's disk until its
        # own writes failed with ENOSPC; it leaves HEAPWISE_MIN_FREE free
        with self.small_tmpfs("8m") as mnt:
            for env, write in (({"HEAPWISE_MIN_FREE": "3M"}, 2 << 20),
                               ({}, 256 << 10)):  # default: 5% of 8 MiB
                for f in os.listdir(mnt):
                    os.unlink(os.path.join(mnt, f))
                e = dict(os.environ, **env)
                p = subprocess.run([HEAPWISE, "run", "-o", os.path.join(mnt, "t.%p.hwt"), "--",
                                    self.prog("fillfs"), "2000000", os.path.join(mnt, "data"),
                                    str(write)],
                                   capture_output=True, text=True, timeout=300, env=e)
                self.assertEqual(p.returncode, 0, p.stderr)  # its own write went through
                self.assertEqual(os.path.getsize(os.path.join(mnt, "data")), write)
                lines = [l for l in p.stderr.splitlines() if l.startswith("heapwise:")
                         and "trace written" not in l
                 and not l.startswith("heapwise: compressed ")]
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn("HEAPWISE_MIN_FREE", lines[0])
                trace = [f for f in os.listdir(mnt) if f.endswith(".hwt")]
                s = self.json("summary", os.path.join(mnt, trace[0]))
                self.assertGreater(s["allocations"], 1000)
                self.assertEqual(s["recording_stopped"]["reason"], "min_free")


if __name__ == "__main__":
    main()
