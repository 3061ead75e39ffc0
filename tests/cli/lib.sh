# lib.sh — helpers for CLI tests: each check prints "ok - name" or "not ok - name".
ALUA=${ALUA_BIN:-build/bin/alua}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# expect NAME EXPECTED_STATUS EXPECTED_STDOUT -- command...
# (stdout compared exactly; stderr kept in $TMP/stderr for further checks)
expect() {
  local name=$1 want_status=$2 want_out=$3
  shift 4
  local out status
  out=$("$@" 2>"$TMP/stderr")
  status=$?
  if [ "$status" = "$want_status" ] && [ "$out" = "$want_out" ]; then
    echo "ok - $name"
  else
    echo "not ok - $name"
    echo "  status $status (want $want_status)"
    echo "  stdout: $(printf '%q' "$out")"
    echo "  want:   $(printf '%q' "$want_out")"
    echo "  stderr: $(head -5 "$TMP/stderr")"
  fi
}

# stderr_has NAME PATTERN: the last command's stderr matches the extended regex
stderr_has() {
  if grep -Eq -- "$2" "$TMP/stderr"; then echo "ok - $1"; else
    echo "not ok - $1"
    echo "  stderr was: $(head -8 "$TMP/stderr")"
  fi
}
