#!/usr/bin/env python3
"""Runs the test_python_layout checkers (one per CPython whose headers were
found when the build was set up) and prints which versions were checked and
which layout rows had no headers here (skipped, with the reason).
argv: python_layout.h, then the checkers. Exit 1 when a checker fails or
none could run."""
import re
import subprocess
import sys


def main():
    with open(sys.argv[1]) as f:
        rows = re.findall(r'\.name = "([^"]+)"', f.read())
    checked, failed = set(), 0
    for exe in sys.argv[2:]:
        p = subprocess.run([exe], capture_output=True, text=True)
        sys.stdout.write(p.stdout + p.stderr)
        m = re.search(r": row (\S+),", p.stdout)
        if p.returncode:
            failed += 1
        elif m:
            checked.add(m.group(1))
    for row in rows:
        if row not in checked:
            print(f"skipped {row}: no headers of a CPython {row} found on this machine "
                  "(tests/support/find_python_headers.py says where it looks)")
    print(f"python layout rows checked: {', '.join(sorted(checked)) or 'none'}")
    if failed:
        print(f"{failed} checker(s) failed")
        return 1
    if not checked:
        print("no CPython headers found: nothing was checked")
        return 77  # meson: skipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
