#!/usr/bin/env bash
# lua_suite.sh — "plain Lua 5.4 runs unchanged": the official Lua 5.4.4 test suite
# (../shared/lua-5.4.4-tests, or LUA_TESTS=dir) under alua, the way stock lua5.4 passes it:
# a copy next to the alua being tested (build/lua-5.4.4-tests), its C libraries built there,
# `echo | alua all.lua` (stdin a pipe, as files.lua wants) ends with "final OK !!!" and
# exits 0. main.lua in it runs this alua as a command, so it checks the command line too.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
SUITE=${LUA_TESTS:-../shared/lua-5.4.4-tests}
if [ ! -f "$SUITE/all.lua" ]; then
  echo "# the Lua 5.4.4 test suite is not at $SUITE: not run"
  exit 0
fi
alua=$(realpath "$ALUA")
work=$(dirname "$(dirname "$alua")")/lua-5.4.4-tests
rm -rf "$work" && mkdir -p "$work" && cp -R "$SUITE/." "$work/"
if make -s -C "$work/libs" LUA_DIR="$(pkg-config --variable=includedir lua5.4)/lua5.4" >"$TMP/make" 2>&1; then
  echo "ok - the suite's C libraries build against Debian's Lua 5.4 headers"
else
  echo "not ok - the suite's C libraries build against Debian's Lua 5.4 headers"
  sed 's/^/  /' "$TMP/make" | tail -10
fi
# under valgrind (make valgrind): the suite's shorter portable run (-e_U=true skips
# main.lua and the heavy parts): about a minute under valgrind
if [ "${VALGRIND:-0}" = 1 ]; then
  run=(${ALUA_RUNNER} -e_U=true all.lua)
  name="echo | alua -e_U=true all.lua under valgrind: final OK !!!"
else
  run=("$alua" all.lua)
  name="echo | alua all.lua: final OK !!!"
fi
# bounded below run.sh's limit, so that a hang still shows where the suite stopped
(cd "$work" && echo | timeout -k 10 240 "${run[@]}") >"$TMP/out" 2>&1
status=$?
if [ "$status" = 0 ] && grep -qx 'final OK !!!' "$TMP/out"; then
  echo "ok - $name ($(grep -o 'total time: [0-9.]*s' "$TMP/out"))"
else
  echo "not ok - $name (status $status)"
  tail -15 "$TMP/out" | sed 's/^/  /'
fi
