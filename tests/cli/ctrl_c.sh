#!/usr/bin/env bash
# ctrl_c.sh — SIGINT to a running alua: the main task is cancelled, its cleanup runs,
# "KeyboardInterrupt" on stderr, exit status 130; a second Ctrl-C exits at once.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

# wait_for LINE FILE: waits until FILE has the line LINE, at most 30 s (an ASan build on a
# loaded machine can take seconds to start); false if it never came
wait_for() {
  for _ in $(seq 300); do grep -qx -- "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

# interrupt_alua RUNNER: one SIGINT to the alua the timeout RUNNER runs. Not to timeout,
# which passes it on only once it has noted its child's pid: on a loaded machine the child
# can run up to "ready" before that, and timeout then exits 130 at once, alua left running.
interrupt_alua() {
  kill -INT $(cat "/proc/$1/task/$1/children")
}

# interrupt SCRIPT_FILE: runs it and sends one SIGINT once it has written "ready" on stderr,
# at the point the check is about (a fixed delay raced a slow start: the signal came before
# alua had its handler, or before the script was where the check wants it). timeout puts a
# handler, not "ignore", on SIGINT: alua starts with the default action. The signal goes to
# alua itself (interrupt_alua), not through timeout.
interrupt() {
  : >"$TMP/stdout"
  : >"$TMP/stderr" # before the job starts: its own redirections come when it runs
  timeout -k 5 60 "$ALUA" "$1" >"$TMP/stdout" 2>"$TMP/stderr" &
  local runner=$!
  wait_for ready "$TMP/stderr"
  interrupt_alua "$runner"
  wait "$runner"
  echo $? >"$TMP/status"
}

# check NAME WANT_STDOUT: status 130, stderr ends with KeyboardInterrupt, stdout as given
check() {
  local status out
  status=$(cat "$TMP/status")
  out=$(cat "$TMP/stdout")
  if [ "$status" = 130 ] && [ "$out" = "$2" ] && [ "$(tail -1 "$TMP/stderr")" = KeyboardInterrupt ]; then
    echo "ok - $1"
  else
    echo "not ok - $1"
    echo "  status $status (want 130)"
    echo "  stdout: $(printf '%q' "$out")"
    echo "  want:   $(printf '%q' "$2")"
    echo "  stderr: $(head -5 "$TMP/stderr")"
  fi
}

cat >"$TMP/toplevel.lua" <<'LUA'
local main = async(function()
  local ok, err = pcall(function()
    local guard <close> = setmetatable({}, { __close = function() print("close ran") end })
    print("sleeping")
    io.stdout:flush()
    io.stderr:write("ready\n")
    await(asyncio.sleep(100))
  end)
  print("pcall caught " .. tostring(err))
  error(err, 0)
end)
await(main())
print("not reached")
LUA
interrupt "$TMP/toplevel.lua"
check "top-level await: the main task's <close> and pcall cleanup run, exit 130" \
  $'sleeping\nclose ran\npcall caught CancelledError'
if grep -q "CancelledError" "$TMP/stderr"; then
  echo "not ok - the cancellation itself is not reported as an error"
else
  echo "ok - the cancellation itself is not reported as an error"
fi

cat >"$TMP/run.lua" <<'LUA'
asyncio.run(function()
  local worker = asyncio.create_task(function()
    local c <close> = setmetatable({}, { __close = function() print("worker cleanup") end })
    io.stderr:write("ready\n") -- the main task awaits this worker already
    await(asyncio.sleep(100))
  end)
  local c <close> = setmetatable({}, { __close = function()
    print("main cleanup")
    await(asyncio.sleep(0.01)) -- cleanup may await
    print("main cleanup done")
  end })
  await(worker)
end)
print("not reached")
LUA
interrupt "$TMP/run.lua"
check "asyncio.run: the main task and the tasks it started clean up" \
  $'worker cleanup\nmain cleanup\nmain cleanup done'

cat >"$TMP/others.lua" <<'LUA'
asyncio.create_task(function()
  local c <close> = setmetatable({}, { __close = function() print("background cleanup") end })
  io.stderr:write("ready\n") -- the main chunk awaits its sleep already
  await(asyncio.sleep(100))
end)
await(asyncio.sleep(100))
LUA
interrupt "$TMP/others.lua"
check "top-level await of a sleep: interrupted, other tasks cancelled" "background cleanup"

cat >"$TMP/after.lua" <<'LUA'
asyncio.create_task(function()
  local c <close> = setmetatable({}, { __close = function() print("server cleanup") end })
  io.stderr:write("ready\n") -- tasks run once the main chunk is done
  await(asyncio.sleep(100))
end)
print("main chunk done")
LUA
interrupt "$TMP/after.lua"
check "after the main chunk: running tasks are cancelled and clean up" \
  $'main chunk done\nserver cleanup'

cat >"$TMP/plain.lua" <<'LUA'
local c <close> = setmetatable({}, { __close = function() print("plain cleanup") end })
io.stderr:write("ready\n")
while true do end
LUA
interrupt "$TMP/plain.lua"
check "plain Lua code outside the loop is interrupted too" "plain cleanup"

# the SIGINT comes while a task awaited at the top level runs busy code: the loop sees it
# only once that task is done, too late to cancel it; the main chunk gets it then (it went
# on as if there had been no Ctrl-C)
cat >"$TMP/late.lua" <<'LUA'
local c <close> = setmetatable({}, { __close = function() print("main chunk cleanup") end })
local busy = async(function()
  io.stderr:write("ready\n")
  local t = os.clock()
  while os.clock() - t < 1 do end
  print("busy done")
end)
await(busy())
while true do end
LUA
interrupt "$TMP/late.lua"
check "a top-level await whose task ends before the loop sees the SIGINT: the main chunk is interrupted" \
  $'busy done\nmain chunk cleanup'

# the SIGINT comes while the only child of a gather awaited at the top level runs busy
# code: the loop sees it once the child is done and the gather's completion is queued,
# when the gather can no longer be cancelled. The cancel stays pending and the await
# raises it (before, the Ctrl-C was lost: the results printed, "after", exit 0)
cat >"$TMP/gather_done.lua" <<'LUA'
local c <close> = setmetatable({}, { __close = function() print("main chunk cleanup") end })
local child = asyncio.create_task(function()
  io.stderr:write("ready\n")
  local t = os.clock()
  while os.clock() - t < 1 do end
  return "result"
end)
print(await(asyncio.gather(child)))
print("after")
LUA
interrupt "$TMP/gather_done.lua"
check "a top-level gather whose last child ends before the loop sees the SIGINT: interrupted" \
  "main chunk cleanup"

# a second Ctrl-C while the cleanup is still running exits at once. The pid comes from the
# main task, so that the first SIGINT finds it running; stdout is emptied before the job
# starts (its own redirection comes when it runs: the previous check's output, read as a
# pid, once sent both signals nowhere).
cat >"$TMP/slow.lua" <<'LUA'
asyncio.run(function()
  local c <close> = setmetatable({}, { __close = function()
    print("slow cleanup")
    io.stdout:flush()
    local t = os.clock()
    while os.clock() - t < 20 do end
    print("cleanup finished")
  end })
  print(io.popen("echo $PPID"):read("l")) -- the shell's parent: this alua
  io.stdout:flush()
  await(asyncio.sleep(100))
end)
LUA
: >"$TMP/stdout"
: >"$TMP/stderr"
timeout -k 5 120 "$ALUA" "$TMP/slow.lua" >"$TMP/stdout" 2>"$TMP/stderr" &
runner=$!
for _ in $(seq 300); do [ -s "$TMP/stdout" ] && break; sleep 0.1; done
pid=$(head -1 "$TMP/stdout")
kill -INT "$pid"
wait_for "slow cleanup" "$TMP/stdout"
start=$(date +%s)
kill -INT "$pid"
wait "$runner"
status=$?
# the cleanup runs 20 s of CPU time, so at least as long on the clock if not cut short
elapsed=$(($(date +%s) - start))
if [ "$status" = 130 ] && [ "$elapsed" -lt 15 ] && grep -q "slow cleanup" "$TMP/stdout" &&
  ! grep -q "cleanup finished" "$TMP/stdout" && grep -q KeyboardInterrupt "$TMP/stderr"; then
  echo "ok - a second Ctrl-C exits at once"
else
  echo "not ok - a second Ctrl-C exits at once"
  echo "  status $status, ${elapsed}s after the second; stdout: $(cat "$TMP/stdout"); stderr: $(head -3 "$TMP/stderr")"
fi

expect "without Ctrl-C the exit status is unchanged" 0 "fine" -- \
  "$ALUA" -e 'await(asyncio.sleep(0.01)) print("fine")'

# ---- as the stock lua command: plain Lua code gets a catchable error -----------------------
# interrupt_when_ready NAME WANT_STDOUT [ignored]: runs $TMP/ready.lua (which prints a first
# line once it is busy) in the background under a 60 s limit, sends one SIGINT once that line
# is out (waiting at most 30 s), and checks that it exits 0 with WANT_STDOUT. With "ignored"
# alua starts with SIGINT ignored, as a background job started by sh does (lua.c installs its
# handler anyway).
interrupt_when_ready() {
  local name=$1 want=$2 ignore=() status out
  [ "${3:-}" = ignored ] && ignore=(sh -c 'trap "" INT; exec "$@"' sh)
  : >"$TMP/stdout"
  : >"$TMP/stderr"
  timeout -k 5 60 "${ignore[@]}" "$ALUA" "$TMP/ready.lua" >"$TMP/stdout" 2>"$TMP/stderr" &
  local runner=$!
  for _ in $(seq 300); do [ -s "$TMP/stdout" ] && break; sleep 0.1; done
  interrupt_alua "$runner"
  wait "$runner"
  status=$?
  out=$(cat "$TMP/stdout")
  if [ "$status" = 0 ] && [ "$out" = "$want" ] && ! grep -q KeyboardInterrupt "$TMP/stderr"; then
    echo "ok - $name"
  else
    echo "not ok - $name"
    echo "  status $status (want 0); stdout: $(printf '%q' "$out") (want $(printf '%q' "$want"))"
    echo "  stderr: $(head -5 "$TMP/stderr")"
  fi
}

cat >"$TMP/ready.lua" <<'LUA'
local ok, err = pcall(function() print(12) while true do end end)
print(42, ok, err)
LUA
interrupt_when_ready "plain Lua: pcall catches the interrupt, the script goes on and exits 0" \
  $'12\n42\tfalse\tCancelledError: KeyboardInterrupt'
interrupt_when_ready "SIGINT ignored at start (a job sh put in the background): still interrupted" \
  $'12\n42\tfalse\tCancelledError: KeyboardInterrupt' ignored

cat >"$TMP/ready.lua" <<'LUA'
local ok, err = pcall(function()
  print("waiting")
  io.stdout:flush()
  await(asyncio.sleep(100))
end)
print("caught", asyncio.CancelledError:is(err))
LUA
interrupt_when_ready "a top-level await whose cancellation is caught: the script goes on and exits 0" \
  $'waiting\ncaught\ttrue'

# SIGINT taken by a thread alua did not make (a host's, a C module's) that does not block
# it: the handler sends it on to the loop's thread, where the interrupt is handled as any
# Ctrl-C. Hooking the main lua_State from the other thread (as it did) raced with the
# thread running it. The module's function blocks SIGINT on the calling (loop) thread,
# makes a thread that unblocks it and raises it at itself (the handler runs there before
# pthread_kill returns), reports whether that left the hook set, then unblocks it.
cat >"$TMP/sigthread.c" <<'C'
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>

static lua_State *main_L;

static void *foreign_thread(void *arg) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  pthread_kill(pthread_self(), SIGINT);
  *(int *)arg = lua_gethook(main_L) != NULL;
  return NULL;
}

static int raise_in_thread(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_L = lua_tothread(L, -1);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  int hooked = -1;
  pthread_t t;
  if (pthread_create(&t, NULL, foreign_thread, &hooked) == 0) pthread_join(t, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  lua_pushboolean(L, hooked == 1);
  return 1;
}

int luaopen_sigthread(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, raise_in_thread);
  lua_setfield(L, -2, "raise_in_thread");
  return 1;
}
C
cat >"$TMP/foreign.lua" <<'LUA'
local sigthread = require "sigthread"
asyncio.run(function()
  local c <close> = setmetatable({}, { __close = function() print("cleanup ran") end })
  print("hooked from the other thread: " .. tostring(sigthread.raise_in_thread()))
  io.stdout:flush()
  await(asyncio.sleep(100))
end)
print("not reached")
LUA
if ${CC:-cc} -shared -fPIC -o "$TMP/sigthread.so" "$TMP/sigthread.c" $(pkg-config --cflags lua5.4) \
     -lpthread 2>"$TMP/cc.err"; then
  expect "SIGINT a C module's thread takes goes on to the loop's thread: exit 130, cleanup ran" \
    130 $'hooked from the other thread: false\ncleanup ran' -- \
    env LUA_CPATH="$TMP/?.so" timeout -k 5 60 "$ALUA" "$TMP/foreign.lua"
  stderr_has "... and KeyboardInterrupt on stderr" '^KeyboardInterrupt$'
else
  echo "not ok - the test module builds"
  head -5 "$TMP/cc.err"
fi
