#!/usr/bin/env bash
# stress_soak.sh — scripts/soak.lua for 15 seconds (make soak runs it for minutes):
# the echo server under load, RSS and descriptors flat, descriptors back without load.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

# 15 s: the connections' buffers fill over the first ~12 s (soak.lua's warm-up)
out=$("$ALUA" scripts/soak.lua "${SOAK_MINUTES:-0.25}" 1 2>&1)
status=$?
if [ $status = 0 ] && grep -q "^flat$" <<<"$out" && grep -q ", 0 broken by the load itself$" <<<"$out"; then
  echo "ok - soak: $(grep '^start:' <<<"$out")"
else
  echo "not ok - soak (status $status)"
  echo "$out" | tail -8 | sed 's/^/  /'
fi
