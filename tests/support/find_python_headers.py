#!/usr/bin/env python3
"""Lists the CPython include directories present on this machine for
tests/unit/test_python_layout.c, one per (version, build): "NAME DIR ROOT
BUILD", where ROOT is the system include directory to search after the
host's (a chroot's /usr/include, for Debian's multiarch pyconfig.h) or "-",
and BUILD is "own" or "ft-define": the headers of a GIL build of 3.13+ read
as a free-threaded build's by defining Py_GIL_DISABLED (a --disable-gil build
installs the same Include/ tree; its pyconfig.h differs in that define, and
in none that changes a struct: 3.13.15t's against Debian's 3.13.18 here), so
that the 3.13t and 3.14t rows are checked where no free-threaded build is.
A free-threaded build's own headers, when present, come first and win.
Looks in /usr/include, pyenv's versions, the Debian sid chroot of the tests
(HEAPWISE_SID, default /work/sid), free-threaded builds under
HEAPWISE_PYTHON_PREFIXES (colon-separated prefixes, default /work/py/*),
and HEAPWISE_PYTHON_HEADERS (colon-separated include directories)."""
import glob
import os
import re
import sys


def version_of(inc):
    try:
        with open(os.path.join(inc, "patchlevel.h")) as f:
            m = re.search(r'#define PY_VERSION\s+"([^"]+)"', f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def free_threaded(inc, root):
    for p in (os.path.join(inc, "pyconfig.h"),
              *glob.glob(os.path.join(root or "/usr/include", "*-linux-gnu",
                                      os.path.basename(inc), "pyconfig.h"))):
        try:
            with open(p) as f:
                text = f.read()
        except OSError:
            continue
        if re.search(r"^#define Py_GIL_DISABLED 1", text, re.M):
            return True
        if "#include" not in text:
            return False
    return os.path.basename(inc).endswith("t")


def main():
    sid = os.environ.get("HEAPWISE_SID", "/work/sid")
    cands = [(d, None) for d in glob.glob("/usr/include/python3.*")]
    cands += [(d, None) for d in glob.glob("/root/.pyenv/versions/*/include/python3.*")]
    cands += [(d, os.path.join(sid, "usr/include")) for d in glob.glob(os.path.join(sid, "usr/include/python3.*"))]
    prefixes = os.environ.get("HEAPWISE_PYTHON_PREFIXES")
    prefixes = prefixes.split(":") if prefixes else glob.glob("/work/py/*")
    for p in prefixes:
        cands += [(d, None) for d in glob.glob(os.path.join(p, "include/python3.*"))]
    for d in filter(None, os.environ.get("HEAPWISE_PYTHON_HEADERS", "").split(":")):
        cands.append((d, None))
    found = []
    for inc, root in sorted(cands):
        v = version_of(inc)
        if not v or not os.path.exists(os.path.join(inc, "internal", "pycore_frame.h")):
            continue
        major, minor = (int(x) for x in v.split(".")[:2])
        if (major, minor) < (3, 11):
            continue
        found.append((v, (major, minor), free_threaded(inc, root), inc, root))
    seen, seen_ft = set(), {mm for _, mm, ft, _, _ in found if ft}
    for v, mm, ft, inc, root in found:
        if (v, ft) in seen:
            continue
        seen.add((v, ft))
        name = re.sub(r"[^A-Za-z0-9]", "_", f"{v}{'t' if ft else ''}_{len(seen)}")
        print(name, inc, root or "-", "own")
    for v, mm, ft, inc, root in found:
        if ft or mm < (3, 13) or mm in seen_ft or (v, True) in seen:
            continue
        seen.add((v, True))
        seen_ft.add(mm)
        name = re.sub(r"[^A-Za-z0-9]", "_", f"{v}t_defined_{len(seen)}")
        print(name, inc, root or "-", "ft-define")


if __name__ == "__main__":
    sys.exit(main())
