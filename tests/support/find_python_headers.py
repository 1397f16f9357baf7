#!/usr/bin/env python3
"""Lists the CPython include directories present on this machine for
tests/unit/test_python_layout.c, one per (version, build): "NAME DIR ROOT",
where ROOT is the system include directory to search after the host's (a
chroot's /usr/include, for Debian's multiarch pyconfig.h) or "-".
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
    seen = set()
    for inc, root in sorted(cands):
        v = version_of(inc)
        if not v or not os.path.exists(os.path.join(inc, "internal", "pycore_frame.h")):
            continue
        major, minor = (int(x) for x in v.split(".")[:2])
        if (major, minor) < (3, 11):
            continue
        ft = free_threaded(inc, root)
        key = (v, ft)
        if key in seen:
            continue
        seen.add(key)
        name = re.sub(r"[^A-Za-z0-9]", "_", f"{v}{'t' if ft else ''}_{len(seen)}")
        print(name, inc, root or "-")


if __name__ == "__main__":
    sys.exit(main())
