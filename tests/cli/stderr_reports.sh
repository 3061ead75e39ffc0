#!/usr/bin/env bash
# stderr_reports.sh — what alua reports on stderr where nobody can catch an error: task
# exceptions never retrieved, coroutines never awaited, errors in callbacks, uncaught
# errors (message, traceback, exit 1). Prints "ok - name" / "not ok - name" lines.
set -u
ALUA_BIN=${ALUA_BIN:-$(dirname "$0")/../../build/bin/alua}
# shellcheck disable=SC2206
RUNNER=(${ALUA_RUNNER:-$ALUA_BIN})
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

# run NAME: runs $dir/NAME.lua, leaves stdout in $out, stderr in $err, status in $status
run() {
  out=$("${RUNNER[@]}" "$1.lua" 2>"$1.err")
  status=$?
  err=$(cat "$1.err")
}

result() { # result NAME CONDITION-STATUS
  if [ "$2" -eq 0 ]; then echo "ok - $1"; else
    echo "not ok - $1"
    echo "  status: $status"
    echo "  stdout: $out" | head -5
    echo "$err" | head -20 | sed 's/^/  stderr: /'
  fi
}

has() { grep -qF -- "$1" <<<"$err"; }
lacks() { ! grep -qF -- "$1" <<<"$err"; }

cat >never_retrieved.lua <<'EOF'
local function failing_function() error("task blew up") end
asyncio.create_task(function() await(asyncio.sleep(0)); failing_function() end)
print("main done")
EOF
run never_retrieved
result "task exception never retrieved: reported with message and traceback, exit 0" \
  $( [ $status -eq 0 ] && [ "$out" = "main done" ] && has "Task exception was never retrieved" &&
     has "never_retrieved.lua:1: task blew up" && has "stack traceback:" &&
     has "in upvalue 'failing_function'"; echo $? )

cat >retrieved.lua <<'EOF'
local t = asyncio.create_task(function() error("seen") end)
print(pcall(await, t))
local u = asyncio.create_task(function() error("looked at") end)
await(asyncio.sleep(0.01))
assert(u:exception())
local c = asyncio.create_task(function() await(asyncio.sleep(10)) end)
await(asyncio.sleep(0))
c:cancel()
local f = asyncio.Future()
f:set_exception("future error")
assert(f:exception() == "future error")
EOF
run retrieved
result "an error that was awaited, looked at or a cancellation: no report" \
  $( [ $status -eq 0 ] && [ -z "$err" ]; echo $? )

cat >chain.lua <<'EOF'
local function inner_fn() error("deep failure") end
local t = asyncio.create_task(function() await(asyncio.sleep(0)); inner_fn() end)
asyncio.create_task(function() await(t) end)
EOF
run chain
result "a task failing on an awaited task's error: the report keeps the failing task's traceback" \
  $( [ $status -eq 0 ] && [ "$(grep -c "Task exception was never retrieved" <<<"$err")" = 1 ] &&
     has "chain.lua:1: deep failure" && has "raised in an awaited task" &&
     has "in upvalue 'inner_fn'"; echo $? )

cat >future_never_retrieved.lua <<'EOF'
local f = asyncio.Future()
f:set_exception(asyncio.QueueEmpty("nobody looked"))
f = nil
collectgarbage()
collectgarbage()
print("after gc")
EOF
run future_never_retrieved
result "future exception never retrieved: reported when collected" \
  $( [ $status -eq 0 ] && has "Future exception was never retrieved" &&
     has "QueueEmpty: nobody looked"; echo $? )

cat >never_awaited.lua <<'EOF'
local main = async(function() print("never runs") end, "main")
main()
local anon = async(function() end)
anon()
collectgarbage()
collectgarbage()
print("still running")
EOF
run never_awaited
result "coroutine never awaited: reported by name, the body never runs, exit 0" \
  $( [ $status -eq 0 ] && [ "$out" = "still running" ] &&
     has "coroutine 'main' was never awaited" &&
     has "coroutine 'function <never_awaited.lua:3>' was never awaited"; echo $? )

cat >awaited.lua <<'EOF'
local f = async(function() return 1 end, "f")
await(f())
asyncio.create_task(f())
asyncio.run(f())
EOF
run awaited
result "awaited or wrapped coroutines: no report" $( [ $status -eq 0 ] && [ -z "$err" ]; echo $? )

cat >uncaught.lua <<'EOF'
local function explode() error("kaboom") end
print("before")
explode()
print("after")
EOF
run uncaught
result "uncaught error: message and traceback on stderr, exit 1" \
  $( [ $status -eq 1 ] && [ "$out" = "before" ] && has "uncaught.lua:1: kaboom" &&
     has "stack traceback:" && has "explode"; echo $? )

cat >uncaught_task.lua <<'EOF'
local function in_the_task() error(asyncio.TimeoutError("took too long")) end
await(asyncio.create_task(function() await(asyncio.sleep(0)); in_the_task() end))
print("not reached")
EOF
run uncaught_task
result "uncaught error from a top-level await: message, the task's traceback, exit 1" \
  $( [ $status -eq 1 ] && [ -z "$out" ] && has "TimeoutError: took too long" &&
     has "in_the_task" && lacks "never retrieved"; echo $? )

cat >uncaught_run.lua <<'EOF'
asyncio.run(function() await(asyncio.sleep(0)); error({ code = 7 }) end)
EOF
run uncaught_run
result "uncaught non-string error from asyncio.run: described, exit 1" \
  $( [ $status -eq 1 ] && has "table" && has "stack traceback:" &&
     lacks "never retrieved"; echo $? )

cat >callback.lua <<'EOF'
local loop = asyncio.get_running_loop()
local function broken_callback() error("callback failed") end
loop:call_soon(broken_callback)
loop:call_later(0.01, function() print("loop went on") end)
EOF
run callback
result "error in a callback: reported with traceback, the loop goes on, exit 0" \
  $( [ $status -eq 0 ] && [ "$out" = "loop went on" ] && has "Exception in callback" &&
     has "callback.lua:2: callback failed" && has "in function <callback.lua:2>"; echo $? )

cat >as_completed_timeout.lua <<'EOF'
local slow = { asyncio.create_task(asyncio.sleep, 10), asyncio.create_task(asyncio.sleep, 10) }
for f in asyncio.as_completed(slow, { timeout = 0.01 }) do
  print(pcall(await, f))
  break
end
for _, t in ipairs(slow) do t:cancel() end
EOF
run as_completed_timeout
result "as_completed timeout: leaving the loop early reports nothing" \
  $( [ $status -eq 0 ] && [ -z "$err" ]; echo $? )
