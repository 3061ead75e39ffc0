#!/bin/sh
# install-deps.sh — installs the Debian packages alua needs to build and test, if missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -e
PACKAGES="build-essential pkg-config liblua5.4-dev lua5.4 libuv1-dev libssl-dev openssl libreadline-dev lua-busted luarocks valgrind clang libclang-rt-14-dev clang-format curl python3 redis-server lua-cjson lua-check"
# asyncio.socket's specs (LuaSocket libraries and their peers) and its copas benchmark
PACKAGES="$PACKAGES lua-socket lua-sec lua-redis python3-aiosmtpd python3-pyftpdlib lua-copas lua5.1"
# asyncio.http: llhttp's sources (built in place) and zlib
PACKAGES="$PACKAGES node-llhttp zlib1g-dev"
# peers the HTTP specs and the benchmarks' smoke test run: wrk, h2load, Node's http
PACKAGES="$PACKAGES wrk nghttp2-client nodejs"
# the HTTP client benchmark's Python peer (bench/run workload HC)
PACKAGES="$PACKAGES python3-aiohttp"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $missing >/dev/null
else
  echo "alua needs these Debian packages; run as root:" >&2
  echo "  apt-get install -y$missing" >&2
  exit 1
fi
