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

# A peer that is missing is a failure, never a quiet "ok ... # skip": every peer the
# smoke runs (python3, node, wrk, lua5.1 with copas) is installed by
# scripts/install-deps.sh, and a run that measured nothing must not look like one that
# did. (To leave a runtime out on purpose: bench/run --smoke --runtimes alua,python,c.)
out=$(NODE="$TMP/no-such-node" BENCH_BIN=build/bench BENCH_JSON="$TMP/results.json" \
      bench/run --smoke --only A --runtimes node 2>&1)
status=$?
if [ $status -eq 1 ] && grep -q "^not ok - bench smoke A spawn node" <<<"$out" \
   && grep -q "install-deps.sh" <<<"$out" && ! grep -q "^ok " <<<"$out"; then
  echo "ok - bench: a missing peer (node) fails the smoke and says what installs it"
else
  echo "not ok - bench: a missing peer (node) fails the smoke and says what installs it"
  echo "  status $status, output:"
  echo "$out" | head -5 | sed 's/^/    /'
fi
# a peer present but unable to run (exit status 77): aiohttp missing, as for a Python
# started without its site packages
printf '#!/bin/sh\nexec python3 -S "$@"\n' >"$TMP/python-without-site" && chmod +x "$TMP/python-without-site"
out=$(PYTHON="$TMP/python-without-site" PYTHON_AIOHTTP="$TMP/python-without-site" BENCH_BIN=build/bench \
      BENCH_JSON="$TMP/results.json" bench/run --smoke --only HC --runtimes python 2>&1)
status=$?
if [ $status -eq 1 ] && grep -q "^not ok - bench smoke HC .* python" <<<"$out" && grep -q "aiohttp" <<<"$out" \
   && ! grep -q "^ok " <<<"$out"; then
  echo "ok - bench: a peer that cannot run (aiohttp missing) fails the smoke and says why"
else
  echo "not ok - bench: a peer that cannot run (aiohttp missing) fails the smoke and says why"
  echo "  status $status, output:"
  echo "$out" | head -5 | sed 's/^/    /'
fi
out=$(LUA51="$TMP/no-such-lua5.1" ALUA="$ALUA" BENCH_BIN=build/bench bench/luasocket_http --smoke 2>&1)
status=$?
if [ $status -eq 1 ] && grep -q "^not ok - bench L copas" <<<"$out" && grep -q "install-deps.sh" <<<"$out" \
   && ! grep -q "Traceback" <<<"$out"; then
  echo "ok - bench: a missing lua5.1 fails workload L's smoke and says what installs it"
else
  echo "not ok - bench: a missing lua5.1 fails workload L's smoke and says what installs it"
  echo "  status $status, output:"
  echo "$out" | tail -5 | sed 's/^/    /'
fi

# driver NAME command...: its ok/not ok lines; one that fails without a "not ok" line
# (a crash) is a failure too
driver() {
  local name=$1 status
  shift
  "$@" >"$TMP/driver.out" 2>&1
  status=$?
  cat "$TMP/driver.out"
  if [ $status -ne 0 ] && ! grep -q '^not ok ' "$TMP/driver.out"; then
    echo "not ok - $name exited with status $status"
    tail -5 "$TMP/driver.out" | sed 's/^/  /'
  fi
}
driver "bench/run --smoke" env ALUA="$ALUA" BENCH_BIN=build/bench BENCH_JSON="$TMP/results.json" bench/run --smoke
# workload L (its own driver): alua's asyncio.socket and copas, each once with N=20
driver "bench/luasocket_http --smoke" env ALUA="$ALUA" BENCH_BIN=build/bench bench/luasocket_http --smoke
