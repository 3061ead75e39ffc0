#!/usr/bin/env bash
# debug.sh — debug mode (alua --debug, ALUA_DEBUG=1, loop:set_debug(true)): slow steps
# named with their task and line, where never-awaited coroutines and never-retrieved
# errors were made, unclosed streams, servers and processes; SIGQUIT prints the tasks
# and the program goes on.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

# a task that holds the loop 0.3 s on line 4 (a busy loop), then suspends on line 6
cat > "$TMP/slow.lua" <<'LUA'
local t = asyncio.create_task(function()
  await asyncio.sleep(0)
  local t0 = os.clock()
  while os.clock() - t0 < 0.3 do end
  local t1 = asyncio.get_running_loop():time()
  await asyncio.sleep(0)
end)
t:set_name("cruncher")
await t
print("done")
LUA
expect "--debug: a slow step does not stop the program" 0 "done" -- "$ALUA" --debug "$TMP/slow.lua"
stderr_has "--debug: the slow step is reported with the task's name and duration" \
  "^Executing Task 'cruncher' took [0-9.]+ s \(loop.slow_callback_duration is 0.1 s\)"
stderr_has "--debug: the slow step names the busy line and the line it suspended at" \
  "running at .*slow.lua:4, then suspended at .*slow.lua:6$"
expect "ALUA_DEBUG=1 turns debug mode on" 0 "done" -- env ALUA_DEBUG=1 "$ALUA" "$TMP/slow.lua"
stderr_has "ALUA_DEBUG=1: the slow step is reported" "Executing Task 'cruncher' took"
expect "without debug mode nothing is reported" 0 "done" -- "$ALUA" "$TMP/slow.lua"
[ -s "$TMP/stderr" ] && echo "not ok - without debug mode stderr is empty" || echo "ok - without debug mode stderr is empty"
expect "-E ignores ALUA_DEBUG" 0 "done" -- env ALUA_DEBUG=1 "$ALUA" -E "$TMP/slow.lua"
[ -s "$TMP/stderr" ] && echo "not ok - -E: stderr is empty" || echo "ok - -E: stderr is empty"
expect "ALUA_DEBUG=0 leaves it off" 0 "done" -- env ALUA_DEBUG=0 "$ALUA" "$TMP/slow.lua"
[ -s "$TMP/stderr" ] && echo "not ok - ALUA_DEBUG=0: stderr is empty" || echo "ok - ALUA_DEBUG=0: stderr is empty"

# loop:set_debug(true) in the script, a raised limit, and a slow callback
cat > "$TMP/callback.lua" <<'LUA'
local loop = asyncio.get_running_loop()
loop:set_debug(true)
loop.slow_callback_duration = 0.05
loop:call_soon(function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.1 do end
end)
await asyncio.sleep(0.01)
print(loop:get_debug(), loop.slow_callback_duration)
LUA
expect "loop:set_debug(true) in a script" 0 $'true\t0.05' -- "$ALUA" "$TMP/callback.lua"
stderr_has "a slow callback is named by its function and reported against the new limit" \
  "^Executing callback function <.*callback.lua:4> took [0-9.]+ s \(loop.slow_callback_duration is 0.05 s\): running at .*callback.lua:6"

# debug mode turned off by a task of a batch of tasks starting together: the tasks after
# it run with debug mode off, and their time is nobody's slow step (since 199b143 they
# ran in the same resume as the one that turned it off, which was reported for their time)
cat > "$TMP/off.lua" <<'LUA'
local loop = asyncio.get_running_loop()
loop:set_debug(true)
await asyncio.sleep(0)
local function step(i)
  if i == 1 then loop:set_debug(false) return i end
  local t0 = os.clock()
  while os.clock() - t0 < 0.15 do end
  return i
end
local tasks = {}
for i = 1, 3 do tasks[i] = asyncio.create_task(step, i) end
await asyncio.gather(table.unpack(tasks))
print(loop:get_debug())
LUA
expect "debug mode turned off by a task among tasks starting together" 0 "false" -- "$ALUA" "$TMP/off.lua"
[ -s "$TMP/stderr" ] && { echo "not ok - the steps after debug mode went off are not reported"; sed 's/^/  /' "$TMP/stderr"; } ||
  echo "ok - the steps after debug mode went off are not reported"

# where things were made
cat > "$TMP/made.lua" <<'LUA'
local async function job() error("job failed") end
local function start() return job() end
local co = start()
co = nil
local t = asyncio.create_task(job)
await asyncio.sleep(0.01)
t = nil
collectgarbage()
collectgarbage()
LUA
expect "--debug: never-awaited and never-retrieved reports" 0 "" -- "$ALUA" --debug "$TMP/made.lua"
stderr_has "never-awaited coroutine: reported" "RuntimeWarning: coroutine 'job' was never awaited"
grep -A3 "was never awaited" "$TMP/stderr" | grep -q "made.lua:2: in .*start" &&
  grep -A3 "was never awaited" "$TMP/stderr" | grep -q "made.lua:3: in main chunk" \
  && echo "ok - never-awaited coroutine: where it was made, every frame" \
  || { echo "not ok - never-awaited coroutine: where it was made, every frame"; sed 's/^/  /' "$TMP/stderr"; }
stderr_has "never-retrieved exception: reported" "Task exception was never retrieved"
grep -A1 "^The task was made at:" "$TMP/stderr" | grep -q "made.lua:5: in main chunk" \
  && echo "ok - never-retrieved exception: where the task was made" \
  || { echo "not ok - never-retrieved exception: where the task was made"; sed 's/^/  /' "$TMP/stderr"; }
expect "without --debug: no creation site" 0 "" -- "$ALUA" "$TMP/made.lua"
grep -q "was made at" "$TMP/stderr" && echo "not ok - without --debug: no 'was made at'" || echo "ok - without --debug: no 'was made at'"

# where a task was made goes on with where its parent was made, within a bound: a chain
# of 300 tasks each made by the last must not carry 300 levels (it made creation quadratic)
cat > "$TMP/chain.lua" <<'LUA'
local function link(i)
  if i == 300 then
    asyncio.create_task(function() error("lost") end)
    await asyncio.sleep(0.01)
    return
  end
  await asyncio.create_task(link, i + 1)
end
await asyncio.create_task(link, 1)
collectgarbage()
collectgarbage()
LUA
expect "--debug: a chain of 300 tasks" 0 "" -- timeout 60 "$ALUA" --debug "$TMP/chain.lua"
stderr_has "the chain's never-retrieved report says where the task was made" "^The task was made at:"
size=$(sed -n '/^The task was made at:/,$p' "$TMP/stderr" | wc -c)
[ "$size" -lt 6000 ] && grep -q $'^\t\.\.\.$' "$TMP/stderr" \
  && echo "ok - the creation traceback of a task deep in a chain is cut (at 4 KiB)" \
  || echo "not ok - the creation traceback of a task deep in a chain is cut (at 4 KiB): $size bytes"

# a coroutine object made deep in a chain of awaits keeps only its innermost frames, as
# Python's origin tracking keeps a depth: the whole stack made each creation walk every
# level (a chain of 2,000 awaits took 0.15 s under --debug, 30,000 took minutes)
cat > "$TMP/deep.lua" <<'LUA'
local down
down = async(function(n)
  if n == 0 then
    local forgotten = down(-1)
    return 0
  end
  return 1 + await(down(n - 1))
end)
print(await down(400))
collectgarbage()
collectgarbage()
LUA
expect "--debug: a chain of 400 awaits" 0 "400" -- timeout 60 "$ALUA" --debug "$TMP/deep.lua"
report=$(sed -n '/was never awaited/,/(in a task made at:)/p' "$TMP/stderr")
frames=$(printf '%s\n' "$report" | grep -c $'^\t')
printf '%s\n' "$report" | grep -q "deep.lua:4: in " && ! printf '%s\n' "$report" | grep -q "skipping" \
  && [ "$frames" -le 23 ] && printf '%s\n' "$report" | grep -q $'^\t\.\.\.$' \
  && echo "ok - a creation deep in a chain records its innermost frames only" \
  || { echo "not ok - a creation deep in a chain records its innermost frames only ($frames)"; printf '%s\n' "$report" | head -40 | sed 's/^/  /'; }

# unclosed resources
cat > "$TMP/unclosed.lua" <<'LUA'
local server = await asyncio.start_server(function(r, w) w:close() end, "127.0.0.1", 0)
local reader, writer = await asyncio.open_connection(server:sockname())
reader, writer = nil, nil
local udp = await asyncio.open_udp({local_addr = {"127.0.0.1", 0}})
udp = nil
local p = await asyncio.create_subprocess_exec("sleep", "5")
local pid = p.pid
p = nil
collectgarbage()
collectgarbage()
server:close()
os.execute("kill " .. pid)
LUA
expect "--debug: unclosed resources" 0 "" -- "$ALUA" --debug "$TMP/unclosed.lua"
stderr_has "an unclosed TCP stream is reported" "^ResourceWarning: unclosed TCP stream, collected while still open"
grep -A12 "unclosed TCP stream" "$TMP/stderr" | grep -q "unclosed.lua:2: in main chunk" \
  && echo "ok - the unclosed stream's report leads to the user's line" \
  || { echo "not ok - the unclosed stream's report leads to the user's line"; sed 's/^/  /' "$TMP/stderr"; }
stderr_has "an unclosed UDP socket is reported" "^ResourceWarning: unclosed UDP socket"
stderr_has "a process collected while running is reported" "^ResourceWarning: unclosed process [0-9]+ \(still running\)"
# (a listening server keeps the loop alive: it is collected only when the state closes)
printf 'local s = await asyncio.start_server(function() end, "127.0.0.1", 0)\nos.exit(0, true)\n' > "$TMP/server.lua"
expect "--debug: an unclosed server" 0 "" -- timeout 10 "$ALUA" --debug "$TMP/server.lua"
stderr_has "an unclosed server is reported" "^ResourceWarning: unclosed server"
expect "without --debug: the same program runs quietly" 0 "" -- "$ALUA" "$TMP/unclosed.lua"
grep -q ResourceWarning "$TMP/stderr" && echo "not ok - without --debug: no ResourceWarning" || echo "ok - without --debug: no ResourceWarning"

# SIGQUIT under --debug: every task printed, and the program goes on
cat > "$TMP/hang.lua" <<'LUA'
local lock = asyncio.Lock()
local holder = asyncio.create_task(function()
  local l <close> = await lock:acquire()
  await asyncio.sleep(2.5)
end)
holder:set_name("holder")
local waiter = asyncio.create_task(function()
  await asyncio.sleep(0)
  local l <close> = await lock:acquire()
end)
waiter:set_name("waiter")
io.stdout:write("ready\n")
io.stdout:flush()
await waiter
print("finished")
LUA
( "$ALUA" --debug "$TMP/hang.lua" > "$TMP/out" 2> "$TMP/stderr" & echo $! > "$TMP/pid"; wait $!; echo $? > "$TMP/status" ) &
for _ in $(seq 50); do grep -q ready "$TMP/out" 2>/dev/null && break; sleep 0.1; done
sleep 0.2
kill -QUIT "$(cat "$TMP/pid")"
wait
[ "$(cat "$TMP/status")" = 0 ] && [ "$(cat "$TMP/out")" = $'ready\nfinished' ] \
  && echo "ok - SIGQUIT under --debug: the program goes on and ends normally" \
  || { echo "not ok - SIGQUIT under --debug: the program goes on and ends normally"; echo "  status $(cat "$TMP/status"): $(cat "$TMP/out")"; }
stderr_has "SIGQUIT under --debug: prints the tasks" "^2 pending tasks \(asyncio.print_tasks\):"
stderr_has "SIGQUIT under --debug: what each waits on" "waits on: Lock \(held by Task 'holder'\)"
stderr_has "SIGQUIT under --debug: the sleep's time left" "waits on: sleep \([0-9.]+ s left\)"
