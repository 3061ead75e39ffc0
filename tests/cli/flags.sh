#!/usr/bin/env bash
# flags.sh — the alua command: the stock lua command's flags, arg table, exit status.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

expect "-v prints the version" 0 "$("$ALUA" -v)" -- "$ALUA" -v
"$ALUA" -v | grep -Eq '^alua [0-9.]+ \(Lua 5\.4\.[0-9]+, libuv [0-9.]+\)$' \
  && echo "ok - -v names alua, Lua and libuv versions" || echo "not ok - -v names alua, Lua and libuv versions"
expect "-e runs a statement" 0 "2" -- "$ALUA" -e "print(1 + 1)"
expect "-e attached to its argument" 0 "3" -- "$ALUA" "-eprint(1 + 2)"
expect "several -e in order" 0 $'a\nb' -- "$ALUA" -e "io.write('a\\n')" -e "print('b')"
sed -n 1p <("$ALUA" -e "print('x')" scripts/examples/hello.lua) | grep -q '^x$' \
  && echo "ok - -e runs before the script" || echo "not ok - -e runs before the script"

mkdir -p "$TMP/mods"
printf 'return { answer = 42 }\n' > "$TMP/mods/mymod.lua"
expect "-l requires a module into a global" 0 "42" -- \
  env LUA_PATH="$TMP/mods/?.lua" "$ALUA" -l mymod -e "print(mymod.answer)"

printf 'print(arg[0], arg[1], arg[2], #arg, select("#", ...), ...)\nprint(arg[-1] ~= nil)\n' > "$TMP/args.lua"
expect "arg table and script varargs" 0 "$TMP/args.lua	a	b c	2	2	a	b c
true" -- "$ALUA" "$TMP/args.lua" a "b c"
expect "-- stops option handling" 0 "$TMP/args.lua	-e	nil	1	1	-e
true" -- "$ALUA" -- "$TMP/args.lua" -e

expect "- runs stdin as the script" 0 "from stdin" -- bash -c "echo 'print(\"from stdin\")' | '$ALUA' -"
expect "no script and stdin not a terminal: runs stdin" 0 "piped" -- bash -c "echo 'print(\"piped\")' | '$ALUA'"

expect "LUA_INIT runs first" 0 $'init\nmain' -- env LUA_INIT="print('init')" "$ALUA" -e "print('main')"
expect "LUA_INIT_5_4 wins over LUA_INIT" 0 $'54\nmain' -- env LUA_INIT="print('init')" LUA_INIT_5_4="print('54')" "$ALUA" -e "print('main')"
printf 'print("init file")\n' > "$TMP/init.lua"
expect "LUA_INIT=@file runs the file" 0 $'init file\nmain' -- env LUA_INIT="@$TMP/init.lua" "$ALUA" -e "print('main')"
expect "-E ignores LUA_INIT" 0 "main" -- env LUA_INIT="print('init')" "$ALUA" -E -e "print('main')"
expect "-E ignores LUA_PATH" 0 "false" -- env LUA_PATH="$TMP/mods/?.lua" "$ALUA" -E -e "print((pcall(require, 'mymod')))"

# the collector: generational, as lua's, with a pause of 300% after a major collection
# that freed little (a growing heap: many tasks made at once)
expect "the collector is generational, its pause 300" 0 $'300\tgenerational' -- \
  "$ALUA" -e "print(collectgarbage('setpause', 300), collectgarbage('incremental'))"

expect "-W turns warnings on" 0 "" -- "$ALUA" -W -e "warn('careful')"
stderr_has "-W: the warning reaches stderr" "Lua warning: careful"
expect "warnings are off by default" 0 "" -- "$ALUA" -e "warn('careful')"
if [ -s "$TMP/stderr" ]; then echo "not ok - no warning without -W"; else echo "ok - no warning without -W"; fi

printf 'local function f() error("kaboom") end\nf()\n' > "$TMP/err.lua"
expect "uncaught error exits 1" 1 "" -- "$ALUA" "$TMP/err.lua"
stderr_has "uncaught error: message with file and line" "err.lua:1: kaboom"
stderr_has "uncaught error: traceback" "stack traceback:"
stderr_has "uncaught error: traceback names the function" "in (local|upvalue|function) 'f'"
expect "syntax error exits 1" 1 "" -- "$ALUA" -e "x = = 1"
stderr_has "syntax error is reported" "unexpected symbol near '='"
expect "missing script exits 1" 1 "" -- "$ALUA" "$TMP/nonexistent.lua"
stderr_has "missing script: cannot open" "cannot open .*nonexistent.lua"
expect "unknown option exits 1" 1 "" -- "$ALUA" -Z
stderr_has "unknown option: usage" "unrecognized option '-Z'"
expect "-e without argument exits 1" 1 "" -- "$ALUA" -e
stderr_has "-e without argument: says so" "'-e' needs argument"

printf 'local asyncio = require "asyncio"\nasyncio.create_task(function() asyncio.await(asyncio.sleep(0.02)); print("later") end)\nprint("main chunk done")\n' > "$TMP/later.lua"
expect "the loop runs after the main chunk until no task is left" 0 $'main chunk done\nlater' -- "$ALUA" "$TMP/later.lua"
printf 'asyncio.get_running_loop():call_later(0.02, function() print("timer") end)\n' > "$TMP/timer.lua"
expect "a pending call_later keeps the loop alive" 0 "timer" -- "$ALUA" "$TMP/timer.lua"
expect "globals: asyncio, async and await are preloaded" 0 "table	function	function" -- \
  "$ALUA" -e "print(type(asyncio), type(async), type(await))"
expect "top-level await in -e" 0 "7" -- "$ALUA" -e "print(await(asyncio.sleep(0.01, 7)))"
expect "-i with piped input evaluates expressions" 0 $'> 1 + 2\n3\n> ' -- bash -c "echo '1 + 2' | '$ALUA' -i -E 2>/dev/null | tail -n +3"
expect "top-level await of sleep(0) yields once and returns" 0 "after" -- "$ALUA" -e "await(asyncio.sleep(0)) print('after')"

# ---- as the stock lua command (lua.c of Lua 5.4.4) does; main.lua of the official suite ----
expect "-l g=mod requires mod into the global g" 0 $'0.0\nA\t20' -- \
  "$ALUA" -l 'str=string' '-lm=math' -e 'print(m.sin(0))' -e 'print(str.upper("a"), m.max(10, 20))'
expect "the script's ... are the arg table as -e left it" 0 "100	b" -- \
  bash -c "echo 'print(...)' | '$ALUA' -e 'arg[1] = 100' - a b"
expect "an -e that replaces arg with a non-table fails the script" 1 "" -- \
  bash -c "echo 'print(1)' | '$ALUA' -e 'arg = 1' -"
stderr_has "a non-table arg: says so" "'arg' is not a table"
expect "without a script, arg[0] is the interpreter and the options follow" 0 "$ALUA	-e	nil" -- \
  "$ALUA" -e 'print(arg[0], arg[1], arg[-1])'
"$ALUA" -v | sed -n 2p | grep -Eq '^Lua 5\.4\.[0-9]+  Copyright \(C\) 1994-20[0-9]+ Lua\.org, PUC-Rio$' \
  && echo "ok - -v also prints Lua's own version line" || echo "not ok - -v also prints Lua's own version line"
"$ALUA" -v -e "print'hello'" | tr '\n' '|' | grep -q 'PUC-Rio|hello|$' \
  && echo "ok - -v with -e: the version lines, then what -e prints" || echo "not ok - -v with -e: the version lines, then what -e prints"
