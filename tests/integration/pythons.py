"""The CPython interpreters the Python tests run on, each with a way to run
a program traced: the host's (Debian's python3.11, pyenv's builds, run with
`heapwise run`), the Debian sid chroot's (3.13, 3.14, 3.15; HEAPWISE_SID,
default /work/sid: the program runs inside the chroot with the built
libheapwise.so and the test scripts copied in, and the trace is analyzed
outside), and own builds (HEAPWISE_PYTHON_PREFIXES, default /work/py/*: install
prefixes with bin/python3.1X or, free-threaded, bin/python3.1Xt). A version that is not present is
skipped with a printed reason; `summary()` lists what was found."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("HW_BUILD", os.path.join(HERE, "..", "..", "build"))
# What this build stages in a chroot lives under a name of its own: several
# clones (or worktrees) testing at once would otherwise run each other's shim
# and programs, the newest copy winning.
STAGE = "/opt/heapwise-" + hashlib.sha1(os.path.realpath(BUILD).encode()).hexdigest()[:12]
PROGS = os.environ.get("HW_PROGS", ".")
HEAPWISE = os.environ.get("HEAPWISE", "heapwise")
SID = os.environ.get("HEAPWISE_SID", "/work/sid")

HOST = ["/usr/bin/python3.11",
        "/root/.pyenv/versions/3.11.7/bin/python3.11",
        "/root/.pyenv/versions/3.12.1/bin/python3.12",
        "/root/.pyenv/versions/3.13.0/bin/python3.13"]
SID_VERSIONS = ["3.13", "3.14", "3.15"]


class Interp:
    def __init__(self, name, exe, root=None, free_threaded=False):
        self.name, self.exe, self.root, self.free_threaded = name, exe, root, free_threaded
        self._probe = {}

    def __repr__(self):
        return self.name

    # --- paths a program sees ---------------------------------------------
    def script(self, path):
        """Where a file of tests/integration (or a built test program) is
        for the interpreter."""
        if not self.root:
            return path
        stage = self.root + STAGE + "/tests"
        rel = os.path.relpath(path, HERE) if path.startswith(HERE) else \
            os.path.join("progs", os.path.basename(path))
        dst = os.path.join(stage, rel)
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(path):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(path, dst)
        return os.path.join(STAGE, "tests", rel)

    def workdir(self, host_dir):
        """A directory the program can write that the host reads: (path
        for the program, path on the host)."""
        if not self.root:
            return host_dir, host_dir
        inside = tempfile.mkdtemp(prefix="hw-", dir=os.path.join(self.root, "tmp"))
        return "/tmp/" + os.path.basename(inside), inside

    def command(self, argv, env):
        """argv (the interpreter's own path first) run as this interpreter
        runs: in the chroot, in a private mount namespace with /proc and
        /dev, nothing left mounted."""
        if not self.root:
            return argv, env
        inner = ["env", "-i"] + [f"{k}={v}" for k, v in env.items()
                                 if k.startswith(("PYTHON", "HEAPWISE", "HW_", "LD_PRELOAD"))
                                 or k in ("PATH", "HOME", "LANG")] + argv
        script = ('mount --make-rprivate / && mount -t proc proc "$0/proc" && '
                  'mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"')
        return ["unshare", "-m", "sh", "-c", script, self.root] + inner, dict(os.environ)

    def library(self):
        lib = os.path.join(BUILD, "preload", "libheapwise.so")
        if not self.root:
            return lib
        dst = self.root + STAGE + "/libheapwise.so"
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(lib):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(lib, dst + ".new")
            os.replace(dst + ".new", dst)
        return STAGE + "/libheapwise.so"

    # --- running ------------------------------------------------------------
    def run(self, args, env, timeout=120):
        argv, e = self.command([self.exe, *args], env)
        return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)

    def run_traced(self, host_dir, args, native=None, env=None, timeout=120):
        """Runs the interpreter with args under the shim; returns
        (status, stderr, traces on the host)."""
        e = dict(env or {})
        inside, outside = self.workdir(tempfile.mkdtemp(prefix="run-", dir=host_dir))
        if not self.root:
            flags = {None: [], "full": ["--native"], "none": ["--no-native"]}[native]
            p = subprocess.run([HEAPWISE, "run", "-o", os.path.join(outside, "t.%p.hwt"), *flags,
                                "--", self.exe, *args], env=e, capture_output=True, text=True,
                               timeout=timeout, cwd=host_dir)
        else:
            e["LD_PRELOAD"] = self.library()
            e["HEAPWISE_OUTPUT"] = os.path.join(inside, "t.%p.hwt")
            if native:
                e["HEAPWISE_NATIVE"] = {"full": "1", "none": "0"}[native]
            p = self.run(args, e, timeout)
        return p.returncode, p.stderr, sorted(glob.glob(os.path.join(outside, "t.*.hwt")))

    def accepts(self, flags, env):
        """Does the interpreter run with these options (a free-threaded
        build refuses PYTHONMALLOC=pymalloc)? (True, "") or (False, why)."""
        key = (tuple(flags), tuple(sorted(env.items())))
        if key not in self._probe:
            p = self.run([*flags, "-c", "pass"], dict(env))
            self._probe[key] = (p.returncode == 0, (p.stderr.strip().splitlines() or [""])[-1])
        return self._probe[key]

    def has_module(self, name):
        return self.accepts(["-c", f"import {name}"], {})[0]

    def sysroot_args(self):
        return ["--sysroot", self.root] if self.root else []


_found = None
_missing = []


def interpreters():
    """Every interpreter present, in a fixed order."""
    global _found
    if _found is not None:
        return _found
    _found = []
    for exe in HOST:
        if os.path.exists(exe):
            _found.append(Interp(f"{version_of(exe)} ({exe})", exe))
        else:
            _missing.append(f"{exe}: not installed")
    if not os.path.isdir(os.path.join(SID, "usr")):
        _missing.append(f"the sid chroot's 3.13, 3.14, 3.15: no chroot at {SID} "
                        "(HEAPWISE_SID; tools/sid_chroot.sh makes one)")
    elif os.geteuid() != 0:
        _missing.append("the sid chroot's 3.13, 3.14, 3.15: chroot needs root")
    else:
        for v in SID_VERSIONS:
            exe = f"/usr/bin/python{v}"
            if os.path.exists(os.path.join(SID, exe.lstrip("/"))):
                _found.append(Interp(f"{v} (sid chroot {SID})", exe, root=SID))
            else:
                _missing.append(f"python{v} in the sid chroot {SID}: not installed")
    prefixes = os.environ.get("HEAPWISE_PYTHON_PREFIXES")
    prefixes = prefixes.split(":") if prefixes else sorted(glob.glob("/work/py/*"))
    seen = set()
    for p in prefixes:
        for exe in sorted(glob.glob(os.path.join(p, "bin", "python3.1[0-9]*")), reverse=True):
            if not re.fullmatch(r"python3\.1[0-9]t?", os.path.basename(exe)):
                continue
            ft, v = free_threaded(exe), version_of(exe)
            if (p, v, ft) in seen:  # python3.14 beside python3.14t: one build
                continue
            seen.add((p, v, ft))
            _found.append(Interp(f"{v}{' free-threaded' if ft else ''} ({exe})", exe,
                                 free_threaded=ft))
    want = os.environ.get("HEAPWISE_PYTHONS", "")
    if want == "first" and len(_found) > 1:
        for i in _found[1:]:
            _missing.append(f"{i.name}: HEAPWISE_PYTHONS=first (CI's sanitizer run checks the "
                            "analyzer on one interpreter; the plain run takes them all)")
        del _found[1:]
    elif want and want != "first":
        keep = [i for i in _found if any(w in i.name for w in want.split(","))]
        for i in _found:
            if i not in keep:
                _missing.append(f"{i.name}: not in HEAPWISE_PYTHONS={want}")
        _found[:] = keep
    for v in ("3.13t", "3.14t"):
        if not any(i.free_threaded and i.name.startswith(v[:-1] + ".") for i in _found):
            _missing.append(f"free-threaded {v}: none under HEAPWISE_PYTHON_PREFIXES "
                            "(tools/free_threaded.sh builds one with --disable-gil)")
    return _found


def free_threaded(exe):
    try:
        return subprocess.run([exe, "-c", "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED'))"],
                              capture_output=True, text=True, timeout=30).stdout.strip() == "1"
    except OSError:
        return False


def version_of(exe):
    try:
        return subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


def summary(out=sys.stderr):
    found = interpreters()
    print("Python interpreters tested: " + (", ".join(i.name for i in found) or "none"), file=out)
    for m in _missing:
        print(f"  skipped: {m}", file=out)
