#!/bin/sh
# Builds the free-threaded CPythons the Python tests look for under
# HEAPWISE_PYTHON_PREFIXES (as root, on Debian 12; about 8 minutes each on 2
# cores, 3.13.15t took 496 s):
#   tools/free_threaded.sh [ROOT [VERSION...]]   (default: /work/py 3.13 3.14)
# makes ROOT/3.13t/bin/python3.13t and ROOT/3.14t/bin/python3.14t, configured
# --disable-gil --enable-shared (no PGO or LTO). The source is Debian's source
# package of pythonX.Y (sid, forky, trixie: apt-get source with an apt
# configuration of its own, the host's untouched), its upstream tarball: the
# newest version whose tarball the mirror gives (it may lack some).
set -eu
ROOT=${1:-/work/py}
[ $# -gt 0 ] && shift
VERSIONS=${*:-3.13 3.14}
export DEBIAN_FRONTEND=noninteractive
# The Debian mirror the host's apt uses (deb822 .sources or one-line .list).
MIRROR=$( { awk '/^URIs:/{for(i=2;i<=NF;i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
            grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              awk '{for(i=2;i<=NF;i++) if ($i ~ /^(https?|ftp):/) {print $i; break}}'
          } | grep -E '/debian/?$' | head -n 1 )
[ -n "$MIRROR" ] || { echo "free-threaded: no Debian mirror in the host's apt sources" >&2; exit 1; }
WORK=$(mktemp -d /tmp/heapwise-ft.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK" # apt fetches as _apt
A=$WORK/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/sources.list.d" "$A/preferences.d"
touch "$A/status"
for s in sid forky trixie; do echo "deb-src $MIRROR $s main"; done >"$A/sources.list"
cat >"$A/apt.conf" <<EOF
Dir::State "$A"; Dir::State::Lists "$A/lists"; Dir::State::status "$A/status";
Dir::Cache "$A/cache"; Dir::Etc::SourceList "$A/sources.list";
Dir::Etc::SourceParts "$A/sources.list.d"; Dir::Etc::Preferences "$A/preferences";
Dir::Etc::PreferencesParts "$A/preferences.d";
EOF
need=
for v in $VERSIONS; do [ -x "$ROOT/${v}t/bin/python${v}t" ] || need="$need $v"; done
if [ -z "$need" ]; then echo "free-threaded: $VERSIONS ready under $ROOT"; exit 0; fi
# the build's libraries, with the host's apt
apt-get install -y -qq --no-install-recommends build-essential pkg-config libssl-dev libffi-dev \
  zlib1g-dev libbz2-dev libsqlite3-dev liblzma-dev libreadline-dev >/dev/null
export APT_CONFIG="$A/apt.conf"
apt-get -qq -o Acquire::Check-Valid-Until=false update
for v in $need; do
  got=
  for ver in $(apt-cache showsrc "python$v" | sed -n 's/^Version: //p' | sort -Vr | uniq); do
    if (cd "$WORK" && apt-get source -qq -d --tar-only "python$v=$ver" >/dev/null 2>&1); then
      got=$ver; break
    fi
    echo "free-threaded: python$v $ver: the mirror has no tarball"
  done
  [ -n "$got" ] || { echo "free-threaded: no source of python$v to be had" >&2; exit 1; }
  up=${got%-*}
  echo "free-threaded: building $up --disable-gil into $ROOT/${v}t"
  mkdir -p "$WORK/src$v"
  tar -xf "$WORK/python${v}_$up.orig.tar."* -C "$WORK/src$v" --strip-components=1
  start=$(date +%s)
  (cd "$WORK/src$v" &&
    ./configure -q --disable-gil --enable-shared --prefix="$ROOT/${v}t" \
      "LDFLAGS=-Wl,-rpath,$ROOT/${v}t/lib" >"$WORK/configure$v.log" 2>&1 &&
    nice make -j"$(nproc)" >"$WORK/make$v.log" 2>&1 &&
    make install >"$WORK/install$v.log" 2>&1) ||
    { tail -n 30 "$WORK"/*"$v".log; exit 1; }
  "$ROOT/${v}t/bin/python${v}t" -VV
  echo "free-threaded: $up built in $(( $(date +%s) - start )) s"
done
