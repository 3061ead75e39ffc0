#!/usr/bin/env bash
# syntax_speed.sh — what the keyword transform costs next to Lua's own parser: a generated
# multi-megabyte alua program (bench/syntax_gen.lua, async-heavy) and, if present, Debian's
# plain Lua libraries concatenated; best of several runs of `luac5.4 -p` against the best
# of several translations of the same text in memory (tests/fuzz/syntax_speed.c).
#   SIZE=bytes (default 16 MiB)  RUNS=5  SYNTAX_SPEED=path to the built driver
set -eu
cd "$(dirname "$0")/.."
SIZE=${SIZE:-16777216}
RUNS=${RUNS:-5}
SPEED=${SYNTAX_SPEED:-build/fuzz/syntax_speed}
[ -x "$SPEED" ] || make --no-print-directory -s "$SPEED"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one wrapper per library file keeps each below Lua's limits on locals and upvalues
lua5.4 bench/syntax_gen.lua "$SIZE" > "$tmp/async.lua"
find -L /usr/share/lua/5.4 -name '*.lua' -type f 2>/dev/null | sort | while read -r f; do
  printf 'do local function _(...)\n'; sed '1{/^#/d}' "$f"; printf '\nend end\n'
done > "$tmp/one.lua"
for i in 1 2 3 4 5 6 7 8; do cat "$tmp/one.lua"; done > "$tmp/plain.lua"

best_luac() {  # milliseconds, best of RUNS
  local best= t TIMEFORMAT=%R
  for _ in $(seq "$RUNS"); do
    t=$( { time luac5.4 -p "$1" >/dev/null; } 2>&1 )
    t=$(awk -v s="$t" 'BEGIN { printf "%.1f", s * 1000 }')
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best"
}

for name in async plain; do
  file=$tmp/$name.lua
  # luac parses the translation: the same program in plain Lua
  xl=$("$SPEED" "$file" $((RUNS * 4)) "$tmp/$name.out.lua")
  luac=$(best_luac "$tmp/$name.out.lua")
  bytes=$(stat -c %s "$file")
  awk -v n="$name" -v b="$bytes" -v l="$luac" -v x="$xl" 'BEGIN {
    printf "%-6s %6.1f MB  luac5.4 -p %8.1f ms  transform %7.2f ms  = %5.2f%% of luac\n",
           n, b / 1e6, l, x, 100 * x / l }'
done
