#!/usr/bin/env bash
# porting.sh — what a Python or Node user tries first at the command line (issue 17):
# --help, and the REPL showing a table's contents rather than its address.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

"$ALUA" --help >"$TMP/help" 2>"$TMP/stderr"
status=$?
if [ $status = 0 ] && grep -q '^usage: .* \[options\] \[script \[args\]\]' "$TMP/help" \
   && grep -q -- '--no-keywords' "$TMP/help" && [ ! -s "$TMP/stderr" ]; then
  echo "ok - --help prints the usage on stdout and exits 0"
else
  echo "not ok - --help prints the usage on stdout and exits 0 (status $status: $(head -2 "$TMP/stderr"))"
fi
# -h is what lua does with it (the official suite's main.lua checks): "unrecognized
# option '-h'", status 1, and the same usage, on stderr
expect "-h fails as in lua, and still shows the usage" 1 "" -- "$ALUA" -h
stderr_has "-h: unrecognized option, as lua says" "unrecognized option '-h'"
stderr_has "-h: the first line says that --help is the way to ask" "^[^ ]*alua: unrecognized option '-h' .*--help"
grep -q -- '^  --help, -h ' "$TMP/help" && echo "ok - the usage lists -h beside --help" ||
  echo "not ok - the usage lists -h beside --help: $(grep -- --help "$TMP/help")"
tail -n +2 "$TMP/stderr" | cmp -s - "$TMP/help" && echo "ok - -h: the usage --help prints" ||
  echo "not ok - -h: the usage --help prints: $(head -2 "$TMP/stderr")"
expect "an unknown option still fails" 1 "" -- "$ALUA" --frobnicate
stderr_has "an unknown option is named" "unrecognized option '--frobnicate'"

# the REPL without a terminal (lua -i's way): results as the prompt shows them (after the
# two version lines; each prompt is followed by the line it read, as lua -i writes them)
repl() { printf '%s\n' "$@" | "$ALUA" -i 2>&1 | sed -e '1,2d' -e '/^> /d' -e '/^$/d'; }
expect "the REPL shows a list's contents" 0 '{1, 2, "three"}' -- repl '{1, 2, "three"}'
expect "the REPL shows keys sorted, nested tables, and marks cycles" 0 \
  '{1, n = {k = true}, self = <cycle>, ["two words"] = 2}' -- \
  repl 't = {1, n = {k = true}, ["two words"] = 2}' 't.self = t' 't'
expect "the REPL shows all_tasks() as a list of tasks" 0 \
  "{<Task pending name='fetch'>}" -- \
  repl 'do asyncio.create_task(asyncio.sleep(1), "fetch") end' 'asyncio.all_tasks()'
expect "the REPL cuts deep nesting" 0 '{a = {b = {c = {...}}}}' -- repl '{a = {b = {c = {d = 1}}}}'
expect "strings and numbers print as before" 0 $'hello\t42' -- repl '"hello", 42'
expect "a TaskGroup and a timeout scope at the REPL prompt, as await works there" 0 \
  $'child done\nafter\nfalse\tTimeoutError: timeout: the deadline passed' -- \
  repl 'local tg <close> = asyncio.TaskGroup() tg:create_task(function() await asyncio.sleep(0.01) print("child done") end)' \
       'print("after")' \
       'local ok, e = pcall(function() local t <close> = asyncio.timeout(0.01) await asyncio.sleep(1) end) print(ok, e)'
