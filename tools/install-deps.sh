#!/usr/bin/env bash
# Installs what heapwise needs to build and test on Debian 12 (as root, or
# through sudo). Installing libunwind-dev replaces the image's LLVM
# libunwind-14-dev; that is expected.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev libunwind-dev libdw-dev libelf-dev strace
      libcmocka-dev zlib1g-dev python3 python3-numpy python3-pytest valgrind libpython3.11-testsuite protobuf-compiler chromium
      golang-go libxml2-utils python3-dev libzstd-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The browser tests' driver (puppeteer-core; it drives Debian's chromium and
# downloads no browser), from the committed lock file. node and npm: the
# machine image's, or Debian's nodejs and npm.
cd "$(dirname "$0")/../tests/browser"
if [ ! -d node_modules/puppeteer-core ]; then
  if ! command -v npm >/dev/null; then
    echo "install-deps: node and npm are needed for the browser tests (Debian: nodejs npm)" >&2
    exit 1
  fi
  npm ci --no-audit --no-fund >/dev/null
fi
