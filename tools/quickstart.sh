#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds heapwise, traces
# the bundled example Python program and prints its reports.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
meson compile -C build >/dev/null
rm -f build/example.hwt
./build/analyzer/heapwise run -o build/example.hwt -- /usr/bin/python3 examples/app.py
echo
./build/analyzer/heapwise summary build/example.hwt
echo
./build/analyzer/heapwise top build/example.hwt -n 5
