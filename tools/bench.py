#!/usr/bin/env python3
"""Overhead benchmark: each workload untraced, under heapwise (native stacks and
no stacks) and under heaptrack, in alternating rounds; prints the median of the
per-round ratios to the untraced time, and heapwise's cost per event.

  tools/bench.py [--build build] [--rounds 5] [--scale 1.0] [--only a,c] [--python]
                 [--python-bin PYTHON ...] [--also-build NAME=DIR ...] [--pythonpath DIR]

Default table: Python workloads run with PYTHONMALLOC=malloc so every tracer
sees the same allocations (heaptrack cannot see pymalloc).
--python: the Python-aware table: untraced and heapwise (default mode,
--native and --sample SIZE, 512K unless --sample says otherwise) with
CPython's own allocator, and beside them heaptrack's ratio under
PYTHONMALLOC=malloc (against an untraced PYTHONMALLOC=malloc run); the trace
bytes per second of the default and the sampled mode; with --accuracy N, the
sampled mode's estimate of every callsite holding at least 2% of the peak,
averaged over N sampled runs, against the default mode's exact figure.
--python --python-bin A --python-bin B ...: the default mode's and --native's
ratios of each interpreter (a path, or sid:3.14 for the sid chroot's) side by
side, each against an untraced run of itself, all rounds alternating (min and
median of the per-round ratios); --also-build NAME=DIR adds the shim of
another build (e.g. main's) beside this one's, in the same rounds.
Workload p (Pygments highlighting Python source to HTML, a pygmentize-like
run) needs Pygments: --pythonpath DIR puts a directory that has it on the
interpreters' PYTHONPATH.
heapwise run keeps the traces raw here (--no-compress): the ratios are the
recording's cost; the compression after a run is bench_compress.py's."""
import argparse
import atexit
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = os.path.join(ROOT, "..", "shared", "bench", "workloads")
if not os.path.isdir(WORKLOADS):  # a worktree under /work/wt: shared/ is /work/shared
    WORKLOADS = os.path.join(ROOT, "..", "..", "shared", "bench", "workloads")
OWN_WORKLOADS = os.path.join(ROOT, "tools", "workloads")  # workloads of this repository
PY = "/usr/bin/python3.11"

# name -> (argv builder, default size[, extra heapwise run flags])
def py(script):
    return lambda n: [PY, os.path.join(WORKLOADS, script), str(n)]


BENCHES = {
    "malloc-c": (None, 5_000_000),
    "a": (py("a_pymalloc_heavy.py"), 1_000_000),
    "b": (py("b_deep_recursion.py"), 20_000),
    "c": (py("c_large_buffers.py"), 800),
    "d": (py("d_threads.py"), 300_000),
    "e": (py("e_leak.py"), 150_000),
    "f": (py("f_numpy.py"), 3_000),
    "g": (py("g_fork.py"), 300_000),
    # heaptrack does not trace fork children; this row traces what it traces
    "g-nofollow": (py("g_fork.py"), 300_000, ["--no-follow"]),
    # KiB of source highlighted (tools/workloads, needs Pygments)
    "p": (lambda n: [PY, os.path.join(OWN_WORKLOADS, "p_pygmentize.py"), str(n)], 256),
}


CPU_TIME = False  # --cpu: user + system time of the command and its children
INSTRUCTIONS = False  # --instructions: callgrind's instruction count instead of a time


def counted(argv, env, cwd):
    """The instructions every process of the command ran (callgrind follows
    fork and exec children), with PYTHONHASHSEED=0 so that runs repeat."""
    d = tempfile.mkdtemp(prefix="hw-cg-")
    try:
        p = subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                            "--callgrind-out-file=" + os.path.join(d, "cg.%p"), *argv],
                           env=dict(env, PYTHONHASHSEED="0"), cwd=cwd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{argv[:4]} under callgrind failed ({p.returncode}): "
                               f"{p.stderr[-400:]}")
        total = 0
        for f in os.listdir(d):
            with open(os.path.join(d, f)) as fh:
                total += next((int(line.split()[1]) for line in fh
                               if line.startswith("summary:")), 0)
        if not total:
            raise RuntimeError(f"{argv[:4]}: callgrind wrote no instruction count")
        return total
    finally:
        shutil.rmtree(d, ignore_errors=True)


def timed(argv, env, cwd):
    if INSTRUCTIONS:
        return counted(argv, env, cwd)
    t = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if CPU_TIME:
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        dt = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({p.returncode}): {p.stderr[-400:]}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-heaptrack", action="store_true")
    ap.add_argument("--python", action="store_true", help="the Python-aware table")
    ap.add_argument("--python-bin", action="append", default=[], metavar="PYTHON",
                    help="with --python: compare interpreters (repeatable): a path, or "
                         "sid:3.14 for the interpreter of the sid chroot (HEAPWISE_SID)")
    ap.add_argument("--sample", default="512K", metavar="SIZE",
                    help="with --python: the sampled mode's interval (default 512K)")
    ap.add_argument("--accuracy", type=int, default=0, metavar="N",
                    help="with --python: compare N sampled runs' callsites with the exact run's")
    ap.add_argument("--no-native", action="store_true",
                    help="with --python: skip the --native column (saves time)")
    ap.add_argument("--extra", action="append", default=[], metavar="CMD",
                    help="with --python: a real program to add as a row (a shell command)")
    ap.add_argument("--default-only", action="store_true",
                    help="with --python-bin: the default mode only (no --native runs)")
    ap.add_argument("--modes", default="",
                    help="with --python-bin: the traced modes, comma-separated, of default, "
                         "native and sample (the --sample interval); default: default,native")
    ap.add_argument("--also-build", action="append", default=[], metavar="NAME=DIR",
                    help="with --python-bin: also the shim of build DIR, labelled NAME")
    ap.add_argument("--pythonpath", default="",
                    help="a directory put on PYTHONPATH (e.g. one with Pygments, for p)")
    ap.add_argument("--cpu", action="store_true",
                    help="time by CPU (user + system of the command and its children) "
                         "instead of wall clock: steadier on a loaded machine")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions with callgrind (one round, PYTHONHASHSEED=0) "
                         "instead of timing: repeatable on a loaded machine")
    args = ap.parse_args()
    global CPU_TIME, INSTRUCTIONS
    CPU_TIME = args.cpu
    INSTRUCTIONS = args.instructions
    if INSTRUCTIONS:
        if not shutil.which("valgrind"):
            print("bench.py: --instructions needs valgrind", file=sys.stderr)
            return 2
        if any(spec.startswith("sid:") for spec in args.python_bin):
            print("bench.py: --instructions: valgrind does not run inside the sid chroot; "
                  "give host interpreters", file=sys.stderr)
            return 2
        args.rounds = 1

    hw = os.path.join(args.build, "analyzer", "heapwise")
    cbench = os.path.join(args.build, "tools", "bench_malloc")
    # heaptrack records no allocation under valgrind (checked: its stats say 0)
    heaptrack = None if args.no_heaptrack or args.instructions else shutil.which("heaptrack")
    only = set(filter(None, args.only.split(",")))
    if args.pythonpath:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [args.pythonpath, os.environ.get("PYTHONPATH", "")]))
    env = dict(os.environ, PYTHONMALLOC="malloc")
    if args.python and args.python_bin:
        return python_versions_table(args, only)
    if args.python:
        return python_table(args, hw, heaptrack, only)
    tmp = tempfile.mkdtemp(prefix="hw-bench-")
    print(f"rounds {args.rounds}, median of per-round ratios to the untraced run"
          f"{'' if heaptrack else ' (heaptrack not installed)'}")
    print("columns: --native = whole native stacks (Python frames spliced in), default =\n"
          "Python frames where there are any (native elsewhere), --no-native = no native\n"
          "frames; ns/event = (median time - untraced) / events, for --no-native and --native"
          + ("\n(--instructions: instructions, not ns, an event)" if INSTRUCTIONS else ""))
    print(f"{'workload':10} {'untraced':>9} {'--native':>9} {'default':>9} {'no-native':>9} "
          f"{'heaptrack':>9} {'events':>10} {'ns/ev nn' if not INSTRUCTIONS else 'in/ev nn':>9} "
          f"{'ns/ev nat' if not INSTRUCTIONS else 'in/ev nat':>9}")
    try:
        for name, (build, size, *extra) in BENCHES.items():
            flags = extra[0] if extra else []
            if only and name not in only:
                continue
            n = max(1, int(size * args.scale))
            argv = [cbench, str(n)] if build is None else build(n)
            need = {"f": "numpy", "p": "pygments"}.get(name[0])
            if need and subprocess.run([PY, "-c", "import " + need], capture_output=True).returncode:
                print(f"{name:10} skipped: {need} is not installed")
                continue
            modes = {
                "untraced": argv,
                "native": [hw, "run", "--no-compress", *flags, "--native", "-o", os.path.join(tmp, "n.%p.hwt"),
                           "--", *argv],
                "default": [hw, "run", "--no-compress", *flags, "-o", os.path.join(tmp, "d.%p.hwt"), "--", *argv],
                "no-stack": [hw, "run", "--no-compress", *flags, "--no-native", "-o",
                             os.path.join(tmp, "s.%p.hwt"), "--", *argv],
            }
            if heaptrack:
                modes["heaptrack"] = [heaptrack, "-o", os.path.join(tmp, "ht"), *argv]
            times = {m: [] for m in modes}
            events = 0
            for r in range(args.rounds):
                for m, cmd in modes.items():
                    times[m].append(timed(cmd, env, tmp))
                    if m == "no-stack" and r == 0:  # events of every process
                        for f in os.listdir(tmp):
                            if f.startswith("s."):
                                s = json.loads(subprocess.run(
                                    [hw, "summary", os.path.join(tmp, f), "--json"],
                                    capture_output=True, text=True).stdout)
                                events += s["events"]
                    for f in os.listdir(tmp):
                        p = os.path.join(tmp, f)
                        os.unlink(p) if os.path.isfile(p) else shutil.rmtree(p)
            base = times["untraced"]
            ratio = {m: statistics.median(t / b for t, b in zip(times[m], base))
                     for m in modes}
            med = {m: statistics.median(times[m]) for m in modes}
            scale = 1 if INSTRUCTIONS else 1e9  # instructions or ns an event
            per_ev = (med["no-stack"] - med["untraced"]) / events * scale if events else 0
            per_ev_st = (med["native"] - med["untraced"]) / events * scale if events else 0
            ht = f"{ratio['heaptrack']:8.2f}x" if "heaptrack" in ratio else f"{'-':>9}"
            base = (f"{med['untraced'] / 1e6:8.0f}M" if INSTRUCTIONS
                    else f"{med['untraced']:8.2f}s")
            print(f"{name:10} {base} {ratio['native']:8.2f}x "
                  f"{ratio['default']:8.2f}x {ratio['no-stack']:8.2f}x {ht} {events:10d} "
                  f"{per_ev:9.1f} {per_ev_st:9.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def python_table(args, hw, heaptrack, only):
    """Ratios with pymalloc on: heapwise default and --native; heaptrack needs
    PYTHONMALLOC=malloc, so its ratio is taken against that untraced run."""
    tmp = tempfile.mkdtemp(prefix="hw-bench-")
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    malloc_env = dict(plain, PYTHONMALLOC="malloc")
    if INSTRUCTIONS:
        print("instructions (callgrind, every process of the command, PYTHONHASHSEED=0), "
              "ratios to the untraced run's; trace sizes instead of rates; Python-aware "
              "(pymalloc on); no heaptrack column: under valgrind it records nothing")
    else:
        print(f"rounds {args.rounds}, median of per-round ratios (smp min: the sampled mode's "
              f"smallest); Python-aware (pymalloc on)")
    unit = ("MB dflt", "KB smp") if INSTRUCTIONS else ("MB/s dflt", "KB/s smp")
    print(f"{'workload':10} {'untraced':>9} {'default':>9} {'--native':>9} "
          f"{'--sample':>9} {'smp min':>8} {'heaptrack*':>10} {unit[0]:>9} {unit[1]:>9}"
          + (f"  accuracy over {args.accuracy} sampled runs" if args.accuracy else ""))
    benches = dict(BENCHES)
    for i, cmd in enumerate(args.extra):
        benches[f"x{i + 1}"] = (lambda n, cmd=cmd: ["sh", "-c", cmd], 1)
    try:
        for name, (build, size, *extra) in benches.items():
            if build is None or (only and name not in only):
                continue
            flags = extra[0] if extra else []
            n = max(1, int(size * args.scale))
            argv = build(n)
            need = {"f": "numpy", "p": "pygments"}.get(name[0])
            if need and subprocess.run([PY, "-c", "import " + need], capture_output=True).returncode:
                print(f"{name:10} skipped: {need} is not installed")
                continue
            out = lambda tag: os.path.join(tmp, tag + ".%p.hwt")
            modes = {
                "untraced": (argv, plain),
                "default": ([hw, "run", "--no-compress", *flags, "-o", out("d"), "--", *argv], plain),
                "native": ([hw, "run", "--no-compress", *flags, "--native", "-o", out("n"), "--", *argv], plain),
                "sample": ([hw, "run", "--no-compress", *flags, "--sample", args.sample, "-o", out("s"), "--",
                            *argv], plain),
            }
            if args.no_native:
                del modes["native"]
            if heaptrack:
                modes["untraced-malloc"] = (argv, malloc_env)
                modes["heaptrack"] = ([heaptrack, "-o", os.path.join(tmp, "ht"), *argv],
                                      malloc_env)
            times = {m: [] for m in modes}
            rates = {"default": [], "sample": []}  # trace bytes per second
            exact, sampled = None, []
            for r in range(args.rounds):
                for m, (cmd, env) in modes.items():
                    times[m].append(timed(cmd, env, tmp))
                    traces = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".hwt")]
                    if m in rates:
                        size = sum(os.path.getsize(t) for t in traces)
                        rates[m].append(size if INSTRUCTIONS else size / times[m][-1])
                    if m == "default" and r == 0 and args.accuracy:
                        exact = callsites(hw, traces)
                    if m == "sample" and len(sampled) < args.accuracy:
                        sampled.append(callsites(hw, traces))
                    for f in os.listdir(tmp):
                        p = os.path.join(tmp, f)
                        os.unlink(p) if os.path.isfile(p) else shutil.rmtree(p)
                while len(sampled) < args.accuracy:  # more sampled runs, untimed
                    timed(modes["sample"][0], plain, tmp)
                    sampled.append(callsites(hw, [os.path.join(tmp, f) for f in os.listdir(tmp)
                                                  if f.endswith(".hwt")]))
                    for f in os.listdir(tmp):
                        os.unlink(os.path.join(tmp, f))

            def ratio(m, base, agg=statistics.median, width=8):
                """A column: the ratio, or '-' for a mode not measured."""
                if m not in times:
                    return f"{'-':>{width + 1}}"
                return f"{agg([t / b for t, b in zip(times[m], times[base])]):{width}.2f}x"

            ht = ratio('heaptrack', 'untraced-malloc', width=9) if heaptrack else f"{'-':>10}"
            acc = accuracy(exact, sampled) if args.accuracy else ""
            base = statistics.median(times['untraced'])
            print(f"{name:10} " + (f"{base / 1e6:8.0f}M " if INSTRUCTIONS else f"{base:8.2f}s ") +
                  f"{ratio('default', 'untraced')} {ratio('native', 'untraced')} "
                  f"{ratio('sample', 'untraced')} {ratio('sample', 'untraced', min, 7)} "
                  f"{ht} "
                  f"{statistics.median(rates['default']) / 1e6:9.1f} "
                  f"{statistics.median(rates['sample']) / 1e3:9.1f}  {acc}", flush=True)
        print("* heaptrack under PYTHONMALLOC=malloc, against untraced PYTHONMALLOC=malloc")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def callsites(hw, traces):
    """{(process index, callsite's frames): peak bytes} of a run's traces
    (the callsite of a Python line: grouped by line)."""
    out = {}
    for i, t in enumerate(sorted(traces)):
        doc = json.loads(subprocess.run([hw, "top", t, "--json", "--by", "peak", "--group-by",
                                         "line", "-n", "100000"],
                                        capture_output=True, text=True).stdout)
        peak = doc["peak_bytes"]
        for c in doc["callsites"]:
            key = (i, json.dumps(c["frames"][:1]))
            out[key] = out.get(key, 0) + c["peak_bytes"]
            if "peak_stderr_bytes" in c:  # sampled: the printed interval's
                out[("var",) + key] = (out.get(("var",) + key, 0)
                                       + c["peak_stderr_bytes"] ** 2)
                out[("n",) + key] = out.get(("n",) + key, 0) + c["peak_samples"]
        out[(i, "peak")] = peak
    return out


def accuracy(exact, sampled):
    """The callsites holding at least 2% of their process's exact peak: how
    many the mean of the sampled runs estimates within 10%, and the worst."""
    if not exact or not sampled:
        return "-"
    big = [k for k, v in exact.items() if k[1] != "peak" and v >= 0.02 * exact[(k[0], "peak")]]
    errs, needed = [], []
    for k in big:
        est = statistics.mean(s.get(k, 0) for s in sampled)
        errs.append(abs(est - exact[k]) / exact[k])
        # one run's relative error (root mean square over the runs); the
        # mean of N runs has 1/sqrt(N) of it: within 10% 19 times in 20
        # takes N >= (1.96 * e1 / 0.10)^2
        e1 = math.sqrt(statistics.mean(((s.get(k, 0) - exact[k]) / exact[k]) ** 2
                                       for s in sampled))
        needed.append(math.ceil((1.96 * e1 / 0.10) ** 2))
    within = sum(e <= 0.10 for e in errs)
    # each run's printed 95% interval (1.96 standard errors): does it hold
    # the exact figure? Overall, and where the estimate rests on 5 samples
    # or more (fewer are marked unreliable)
    inside = total = inside5 = total5 = 0
    for s in sampled:
        for k in big:
            hit = abs(s.get(k, 0) - exact[k]) <= 1.96 * math.sqrt(s.get(("var",) + k, 0))
            inside += hit
            total += 1
            if s.get(("n",) + k, 0) >= 5:
                inside5 += hit
                total5 += 1
    worst = max(errs) if errs else 0
    peak = max(v for k, v in exact.items() if k[1] == "peak") / 2**20
    return (f"peak {peak:.1f} MiB: {within}/{len(big)} callsites >=2% of peak within 10% "
            f"(worst {worst * 100:.1f}%); runs for all within 10% (95%): "
            f"{max(needed) if needed else 0}; exact inside the printed 95% interval "
            f"{inside}/{total} ({inside5}/{total5} with >=5 samples)")


class Interpreter:
    """An interpreter to benchmark: on the host, or in the sid chroot (run in a
    private mount namespace; the shim and the workloads are copied in)."""

    def __init__(self, spec, libs):
        """libs: {label: path of a libheapwise.so}"""
        self.root = None
        if spec.startswith("sid:"):
            self.root = os.environ.get("HEAPWISE_SID", "/work/sid")
            self.exe = f"/usr/bin/python{spec[4:]}"
            self.name = f"{spec[4:]} (sid)"
            # a directory of this run's own: benchmarks of other builds may
            # share the chroot at the same time
            stage = tempfile.mkdtemp(prefix="heapwise-bench-", dir=os.path.join(self.root, "opt"))
            atexit.register(shutil.rmtree, stage, True)
            shutil.copytree(WORKLOADS, os.path.join(stage, "workloads"))
            shutil.copytree(OWN_WORKLOADS, os.path.join(stage, "own"))
            inside = "/opt/" + os.path.basename(stage)
            self.libs = {}
            for i, (label, lib) in enumerate(libs.items()):
                os.mkdir(os.path.join(stage, f"lib{i}"))
                shutil.copy2(lib, os.path.join(stage, f"lib{i}", "libheapwise.so"))
                self.libs[label] = f"{inside}/lib{i}/libheapwise.so"
            self.workloads = inside + "/workloads"
            self.own = inside + "/own"
        else:
            self.exe = spec
            self.libs = dict(libs)
            self.workloads = WORKLOADS
            self.own = OWN_WORKLOADS
            v = subprocess.run([spec, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True).stdout.strip()
            self.name = v or spec

    def tmp(self):
        """(directory for traces as the program sees it, on the host)"""
        base = os.path.join(self.root, "tmp") if self.root else None
        d = tempfile.mkdtemp(prefix="hw-bench-", dir=base)
        return ("/tmp/" + os.path.basename(d) if self.root else d), d

    def argv(self, script, n, env):
        own = os.path.exists(os.path.join(OWN_WORKLOADS, script))
        argv = [self.exe, os.path.join(self.own if own else self.workloads, script), str(n)]
        if not self.root:
            return argv
        inner = ["env", "-i", "PATH=/usr/bin:/bin"] + [f"{k}={v}" for k, v in env.items()
                                                      if k.startswith(("HEAPWISE", "LD_PRELOAD",
                                                                       "PYTHON"))] + argv
        script = ('mount --make-rprivate / && mount -t proc proc "$0/proc" && '
                  'mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"')
        return ["unshare", "-m", "sh", "-c", script, self.root] + inner

    def has(self, module):
        return subprocess.run(self.argv_raw(["-c", "import " + module]),
                              capture_output=True).returncode == 0

    def argv_raw(self, args):
        if not self.root:
            return [self.exe, *args]
        return ["chroot", self.root, self.exe, *args]


def python_versions_table(args, only):
    """The default mode's (and --native's) ratio to an untraced run of the
    same interpreter, for each interpreter given, every run alternating:
    all interpreters are traced the same way (LD_PRELOAD), so their ratios
    compare."""
    libs = {"": os.path.join(args.build, "preload", "libheapwise.so")}
    for spec in args.also_build:
        label, _, d = spec.partition("=")
        libs[label] = os.path.join(d, "preload", "libheapwise.so")
    pys = [Interpreter(spec, libs) for spec in args.python_bin]
    wanted = (tuple(filter(None, args.modes.split(","))) if args.modes
              else ("default",) if args.default_only else ("default", "native"))
    bad = [m for m in wanted if m not in ("default", "native", "sample")]
    if bad:
        print(f"bench.py: --modes: unknown mode {bad[0]!r} (default, native, sample)",
              file=sys.stderr)
        return 2
    cols = [(label, mode) for label in libs for mode in wanted]

    def col_name(label, mode):
        return (label + " " if label else "") + {"native": "--native",
                                                 "sample": "--sample"}.get(mode, "default")
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    print((("instructions (callgrind, PYTHONHASHSEED=0), ratios") if INSTRUCTIONS else
           f"rounds {args.rounds}, min/median of per-round ratios") + " to an untraced run of the "
          "same interpreter (pymalloc on, traced with LD_PRELOAD)"
          + (f"; --sample {args.sample}" if "sample" in wanted else ""))
    print(f"{'workload':10}" + "".join(f" {(p.name + ' ' if i == 0 else '') + col_name(*c):>16}"
                                     for p in pys for i, c in enumerate(cols)))
    for name, (build, size, *extra) in BENCHES.items():
        if build is None or (only and name not in only):
            continue
        script = build(1)[1].rsplit("/", 1)[1]
        n = max(1, int(size * args.scale))
        follow = {"HEAPWISE_FOLLOW": "0"} if extra and "--no-follow" in extra[0] else {}
        runs = {}
        for p in pys:
            need = {"f": "numpy", "p": "pygments"}.get(name[0])
            if need and not p.has(need):
                print(f"{name:10} {p.name}: skipped, no {need}")
                continue
            inside, outside = p.tmp()
            modes = [(("", "untraced"), {})]
            for label, mode in cols:
                out = {"HEAPWISE_OUTPUT": os.path.join(inside, "t.%p.hwt"),
                       "LD_PRELOAD": p.libs[label], **follow}
                if mode == "native":
                    out["HEAPWISE_NATIVE"] = "1"
                elif mode == "sample":
                    out["HEAPWISE_SAMPLE"] = args.sample
                modes.append(((label, mode), out))
            for mode, extra_env in modes:
                env = dict(plain, **extra_env)
                runs[(p.name, mode)] = (p.argv(script, n, env), env, outside)
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, (cmd, env, outside) in runs.items():
                times[k].append(timed(cmd, env, outside))
                for f in os.listdir(outside):
                    os.unlink(os.path.join(outside, f))

        def ratio(py, col):
            if (py, col) not in times:
                return "-"
            r = [t / b for t, b in zip(times[(py, col)], times[(py, ("", "untraced"))])]
            if INSTRUCTIONS:  # one count: no spread to show
                return f"{r[0]:.2f}x"
            return f"{min(r):.2f}/{statistics.median(r):.2f}x"

        print(f"{name:10}" + "".join(f" {ratio(p.name, c):>16}" for p in pys for c in cols),
              flush=True)
        for *_, outside in runs.values():
            shutil.rmtree(outside, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
