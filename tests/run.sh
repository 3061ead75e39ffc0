#!/usr/bin/env bash
# run.sh — the whole suite: busted specs under alua, CLI tests, conformance programs and
# example twins. Prints TAP-like lines and ends with exactly "N passed, N failed".
#   ALUA=build/bin/alua  VALGRIND=1 (run alua under valgrind memcheck)  ONLY=pattern (or
#   several, space-separated: a test runs if its path contains one)
#   STRESS=quick|full: sizes of the stress specs (default: in between; quick under valgrind)
set -u
cd "$(dirname "$0")/.."
ALUA=${ALUA:-build/bin/alua}
export ALUA_BIN=$(realpath "$ALUA")
export MODULE_DIR=${MODULE_DIR:-build/lua}
ONLY=${ONLY:-}
passed=0
failed=0
failures=()

if [ "${VALGRIND:-0}" = 1 ]; then
  # definite leaks and invalid accesses in our code fail the run; Lua's own
  # allocations are all freed by lua_close, so "definite" is the honest bar.
  # --fair-sched=yes: valgrind runs one thread at a time, and its default lock lets a
  # spinning worker thread keep the CPU for seconds while the loop thread waits
  export STRESS=${STRESS:-quick}
  RUNNER=(valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --suppressions="$PWD/tests/valgrind.supp" "$ALUA_BIN")
else
  RUNNER=("$ALUA_BIN")
fi
export ALUA_RUNNER="${RUNNER[*]}"

# a hung test is a failure, never a hung suite
if [ "${VALGRIND:-0}" = 1 ]; then LIMIT=${LIMIT:-1500}; else LIMIT=${LIMIT:-300}; fi
TIMEOUT=(timeout -k 10 "$LIMIT")

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "not ok - $1"; }
selected() {
  [ -z "$ONLY" ] && return 0
  local pattern
  for pattern in $ONLY; do [[ "$1" == *"$pattern"* ]] && return 0; done
  return 1
}

# 1. busted specs, one process per file so that a crash is one file's failure
for spec in tests/*_spec.lua; do
  [ -e "$spec" ] || continue
  selected "$spec" || continue
  out=$("${TIMEOUT[@]}" "${RUNNER[@]}" tests/busted.lua -o TAP "$spec" 2>&1)
  status=$?
  [ $status -eq 124 ] && out+=$'\n'"not ok - $spec timed out after ${LIMIT}s"

  oks=$(grep -c '^ok ' <<<"$out")
  noks=$(grep -c '^not ok ' <<<"$out")
  passed=$((passed + oks))
  failed=$((failed + noks))
  if [ "$noks" -gt 0 ] || [ "$status" -ne 0 ]; then
    echo "$out" | grep -v '^ok ' | sed "s|^|  $spec: |"
  fi
  [ "$noks" -gt 0 ] && failures+=("$spec: $noks specs failed")
  if [ "$status" -ne 0 ] && [ "$noks" -eq 0 ]; then fail "$spec exited with status $status"; fi
  [ "$oks" -gt 0 ] && echo "ok - $spec: $oks specs passed"
done

# 2. CLI tests: each prints "ok - name" / "not ok - name" lines
for t in tests/cli/*.sh; do
  [ -e "$t" ] || continue
  selected "$t" || continue
  out=$("${TIMEOUT[@]}" bash "$t" 2>&1)
  status=$?
  [ $status -eq 124 ] && out+=$'\n'"not ok - $t timed out after ${LIMIT}s"

  echo "$out" | grep -E '^(ok|not ok|  )' || true
  oks=$(grep -c '^ok ' <<<"$out")
  noks=$(grep -c '^not ok ' <<<"$out")
  passed=$((passed + oks))
  failed=$((failed + noks))
  if [ "$status" -ne 0 ] && [ "$noks" -eq 0 ]; then fail "$t exited with status $status"; fi
done

# 3. programs with expected output: the shared conformance set (keyword syntax) and the
#    examples under scripts/ that have a .expected twin
check_output() {
  local prog=$1 expected=$2 out
  out=$("${TIMEOUT[@]}" "${RUNNER[@]}" "$prog" 2>&1)
  local status=$?
  if [ $status -eq 0 ] && diff <(echo "$out") "$expected" >/dev/null; then
    pass "$prog"
  else
    fail "$prog"
    diff <(echo "$out") "$expected" | head -20 | sed 's/^/  /'
  fi
}
conformance=../shared/conformance
# (until the keyword transform is wired into alua these cannot run: it says so)
if [ -d "$conformance" ] && ! "$ALUA_BIN" -e 'local f = async function() end' 2>/dev/null; then
  fail "keyword syntax unavailable: conformance programs not run"
elif [ -d "$conformance" ]; then
  for prog in "$conformance"/*.lua; do
    selected "$prog" || continue
    check_output "$prog" "${prog%.lua}.expected"
  done
fi
while IFS= read -r expected; do
  prog=${expected%.expected}.lua
  [ -f "$prog" ] || continue
  selected "$prog" || continue
  check_output "$prog" "$expected"
done < <(find scripts -name '*.expected' | sort)

if [ $failed -gt 0 ]; then
  echo "failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
