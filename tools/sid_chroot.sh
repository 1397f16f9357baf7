#!/bin/sh
# Makes the Debian sid chroot the Python tests run CPython 3.13, 3.14 and 3.15
# in (as root, on Debian 12; about a minute and 470 MB):
#   tools/sid_chroot.sh [DIR]        (default: $HEAPWISE_SID, else /work/sid)
# The tests copy the built libheapwise.so and their scripts into it, run the
# interpreters there (a private mount namespace with /proc and /dev: nothing
# stays mounted) and analyze the traces outside with --sysroot DIR.
set -eu
SID=${1:-${HEAPWISE_SID:-/work/sid}}
if [ -x "$SID/usr/bin/python3.15" ] && [ -x "$SID/usr/bin/python3.14" ] && [ -x "$SID/usr/bin/python3.13" ]; then
  echo "sid chroot: $SID is ready"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
# The Debian mirror the host's apt uses (deb822 .sources or one-line .list).
MIRROR=$( { awk '/^URIs:/{for(i=2;i<=NF;i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
            grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              awk '{for(i=2;i<=NF;i++) if ($i ~ /^(https?|ftp):/) {print $i; break}}'
          } | grep -E '/debian/?$' | head -n 1 )
MIRROR=${MIRROR:-http://deb.debian.org/debian}
echo "sid chroot: $SID from $MIRROR"
mkdir -p "$SID"
# debootstrap does not check Release's Valid-Until; apt inside does (sid's may be past it).
debootstrap --variant=minbase sid "$SID" "$MIRROR" >"$SID.debootstrap.log" 2>&1 ||
  { tail -n 20 "$SID.debootstrap.log"; exit 1; }
unshare -m sh -euc '
  mount --make-rprivate /
  mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"
  chroot "$1" apt-get -qq -o Acquire::Check-Valid-Until=false update
  chroot "$1" apt-get install -y -qq --no-install-recommends \
    python3.13 python3.14 python3.15 libpython3.13-dev libpython3.14-dev libpython3.15-dev \
    libunwind8 python3-numpy >/dev/null
  chroot "$1" apt-get clean' sh "$SID"
for v in 3.13 3.14 3.15; do chroot "$SID" "python$v" -c 'import sys; print("sid chroot:", sys.version.split()[0])'; done
