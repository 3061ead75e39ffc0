#!/usr/bin/env bash
# fresh-root.sh — the README's promise checked as a new user would: a fresh Debian 12 root
# (debootstrap --variant=minbase, plus build-essential, git and ca-certificates, and the
# /etc/hosts Debian installs, where localhost is 127.0.0.1 and ::1), a clean clone of this
# repository in it, then the README's two commands: `make run` (which installs the rest
# with scripts/install-deps.sh) and `make test`, the latter with no network at all
# (loopback only), as tests must pass offline.
#
#   tools/fresh-root.sh [ROOT]     (as root; ROOT defaults to /var/tmp/alua-fresh-root)
#   REF=main            what to clone (a branch or commit of this repository)
#   MIRROR=http://deb.debian.org/debian
#   SHARED=../shared    copied next to the clone (the official Lua test suite, conformance
#                       programs), as in this checkout; SHARED= to leave it out
#   ONLINE_TEST=1       run make test with the network too
#   KEEP=1              reuse ROOT's debootstrap if it is already there
#
# Everything runs in a private mount namespace (unshare), so the /proc, /sys and /dev
# mounts of the root go away with it. Output: each step's tail and the final status.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
ROOT=${1:-/var/tmp/alua-fresh-root}
REF=${REF:-main}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SHARED=${SHARED-../shared}

[ "$(id -u)" -eq 0 ] || { echo "fresh-root.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-root.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
command -v unshare >/dev/null && command -v ip >/dev/null ||
  { echo "fresh-root.sh: needs unshare (util-linux) and ip (iproute2)" >&2; exit 1; }

step() { echo "== $* ($(date +%H:%M:%S))"; }

if [ "${KEEP:-0}" = 1 ] && [ -x "$ROOT/usr/bin/make" ]; then
  step "reusing the debootstrap in $ROOT"
else
  step "debootstrap bookworm --variant=minbase into $ROOT from $MIRROR"
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  debootstrap --variant=minbase --include=build-essential,git,ca-certificates \
    bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -20 "$ROOT.debootstrap.log"; echo "fresh-root.sh: debootstrap failed (log: $ROOT.debootstrap.log)"; exit 1; }
fi

# what Debian's installer writes (netcfg): localhost is both, ::1 comes first in lookups
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	alua-fresh

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
EOF
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" # for apt-get in make run
echo "deb $MIRROR bookworm main" >"$ROOT/etc/apt/sources.list"

step "a clean clone of $REF"
rm -rf "$ROOT/root/alua" "$ROOT/root/shared"
git clone -q --no-local "$repo" "$ROOT/root/alua"
git -C "$ROOT/root/alua" checkout -q "$REF"
echo "   $(git -C "$ROOT/root/alua" log --oneline -1)"
if [ -n "$SHARED" ] && [ -d "$SHARED" ]; then
  cp -R "$SHARED" "$ROOT/root/shared"
  echo "   with $SHARED next to it"
fi

# in_root online|offline COMMAND: runs COMMAND (sh) in the root with a clean environment;
# offline: in a new network namespace where only loopback is up
in_root() {
  local net=()
  [ "$1" = offline ] && net=(-n)
  unshare -m "${net[@]}" --propagation private sh -c '
    set -e
    mode=$1 root=$2; shift 2
    if [ "$mode" = offline ]; then ip link set lo up; fi
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 /bin/sh -c "cd /root/alua && $*"' sh "$1" "$ROOT" "${@:2}"
}

# failures LOG: the failed checks of a make test log (specs' are indented under their file)
failures() { { grep -E '^(not ok|  [^ ]+: not ok)' "$1" || true; } | head -20 | sed 's/^/   /'; }

status=0
step "make run (installs the packages it needs, builds, runs an example)"
in_root online "make run" >"$ROOT.make-run.log" 2>&1 || status=$?
tail -8 "$ROOT.make-run.log" | sed 's/^/   /'
echo "   make run: exit status $status (log: $ROOT.make-run.log)"
[ $status -eq 0 ] || exit $status

if [ "${ONLINE_TEST:-0}" = 1 ]; then
  step "make test (with the network)"
  in_root online "make test" >"$ROOT.make-test-online.log" 2>&1 || status=$?
  failures "$ROOT.make-test-online.log"
  echo "   $(tail -1 "$ROOT.make-test-online.log") (exit status $status)"
fi

step "make test (offline: a network namespace with only loopback)"
in_root offline "getent ahosts localhost | head -1; make test" >"$ROOT.make-test.log" 2>&1 || status=$?
head -1 "$ROOT.make-test.log" | sed 's/^/   localhost resolves first to: /'
failures "$ROOT.make-test.log"
echo "   $(tail -1 "$ROOT.make-test.log") (exit status $status; log: $ROOT.make-test.log)"
exit $status
