#!/usr/bin/env bash
# bench_smoke.sh — every benchmark program (bench/: alua, Python, Node, raw C) runs once
# with a tiny N and prints its figures, so the suite cannot rot. Never the full benchmark.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

if ! out=$(make --no-print-directory -s bench-progs 2>&1); then
  echo "not ok - bench: the raw C programs build (make bench-progs)"
  echo "$out" | head -10 | sed 's/^/  /'
  exit 0
fi
echo "ok - bench: the raw C programs build (make bench-progs)"
ALUA="$ALUA" BENCH_BIN=build/bench BENCH_JSON="$TMP/results.json" bench/run --smoke
# workload L (its own driver): alua's asyncio.socket and copas, each once with N=20
ALUA="$ALUA" BENCH_BIN=build/bench bench/luasocket_http --smoke
