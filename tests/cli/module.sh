#!/usr/bin/env bash
# module.sh — build/lua/asyncio.so loaded by stock lua5.4 with require "asyncio".
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
MODULE_DIR=${MODULE_DIR:-build/lua}
# under make check the module is built with ASan and UBSan: stock lua5.4 must load their
# runtimes before anything else
PRELOAD=$(ldd "$MODULE_DIR/asyncio.so" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ {print $3}' | paste -sd:)

cat > "$TMP/stock.lua" <<'LUA'
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local double = async(function(x) await(asyncio.sleep(0.01)); return x * 2 end)
local a, b = await(asyncio.gather(double(1), double(2)))
print(a, b)
print(asyncio.run(double(21)))
local gen = coroutine.wrap(function() for i = 1, 2 do await(asyncio.sleep(0)); coroutine.yield(i) end end)
print(asyncio.run(function() local s = 0 for v in gen do s = s + v end return s end))
LUA
expect "stock lua5.4 runs asyncio from asyncio.so" 0 $'2\t4\n42\n3' -- \
  env LD_PRELOAD="$PRELOAD" LUA_CPATH="$MODULE_DIR/?.so" lua5.4 "$TMP/stock.lua"
expect "the module carries its Lua parts (no stdlib files needed)" 0 "function" -- \
  env -C "$TMP" LD_PRELOAD="$PRELOAD" LUA_CPATH="$(realpath "$MODULE_DIR")/?.so" LUA_PATH="" lua5.4 -e 'print(type(require("asyncio").gather))'

# the call form is stock Lua's only await: `return await(f(n - 1))` stays a proper tail
# call there too (await.c's trampoline; Lua's stack overflowed near 200,000 levels)
cat > "$TMP/tail.lua" <<'LUA'
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local down
down = async(function(n)
  if n == 0 then return "bottom" end
  if n % 1000 == 0 then await(asyncio.sleep(0)) end
  return await(down(n - 1))
end)
print(asyncio.run(down, 300000))
LUA
expect "stock lua5.4: return await(f(n - 1)) 300,000 levels deep" 0 "bottom" -- \
  env LD_PRELOAD="$PRELOAD" LUA_CPATH="$MODULE_DIR/?.so" lua5.4 "$TMP/tail.lua"

# async/core/stack.c cuts a task's stack at its first await with Lua's internal
# luaD_reallocstack, which only the alua command (Lua linked statically) reaches: under
# stock lua5.4 the module leaves stacks as they are (a suspended task's thread costs what
# a suspended coroutine's does), and a task that awaits shallow and then goes deep, with
# upvalues and <close> across the await, runs the same
cat > "$TMP/stack.lua" <<'LUA'
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local N = 500
local function heap() collectgarbage() collectgarbage() return collectgarbage("count") * 1024 end
local function deep(n) if n == 0 then return 0 end return deep(n - 1) + 1 end
print(asyncio.run(function()
  local gate = asyncio.Future()
  -- (the await's value kept: a body whose last act is the await gives its thread back
  -- while it waits, async/core/tail.c, and would measure no thread at all)
  local body = async(function() local v = await(gate) return v end)
  local tasks = {}
  for i = 1, N do tasks[i] = false end
  for i = 1, N do tasks[i] = asyncio.create_task(body()) end
  local before = heap()
  await(asyncio.sleep(0))
  local per_task = (heap() - before) / N
  local cos = {}
  for i = 1, N do cos[i] = false end
  before = heap()
  local function co_body() pcall(coroutine.yield) end
  for i = 1, N do cos[i] = coroutine.create(co_body); coroutine.resume(cos[i]) end
  local per_co = (heap() - before) / N
  gate:set_result(true)
  await(asyncio.gather(table.unpack(tasks)))
  local closed, x = false, 1
  local t = asyncio.create_task(function()
    local c <close> = setmetatable({}, { __close = function() closed = true end })
    await(asyncio.sleep(0))
    x = x + deep(3000)
    return x
  end)
  local verdict = per_task <= per_co - 48 and "cut"
    or math.abs(per_task - per_co) < 16 and "not cut" or ("%.1f %.1f"):format(per_task, per_co)
  return verdict, await(t), closed
end))
LUA
expect "stock lua5.4: no stack cut, tasks that await then go deep run the same" 0 $'not cut\t3001\ttrue' -- \
  env LD_PRELOAD="$PRELOAD" LUA_CPATH="$MODULE_DIR/?.so" lua5.4 "$TMP/stack.lua"
expect "the alua command cuts the same tasks' stacks" 0 $'cut\t3001\ttrue' -- \
  "$ALUA" "$TMP/stack.lua"

# async/core/tail.c reads only Lua 5.4's layouts, no internal function: under stock
# lua5.4 too, a body whose last act is an await gives its thread to the next task to start
cat > "$TMP/tail.lua" <<'LUA'
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
print(asyncio.run(function()
  local threads, fut = {}, asyncio.Future()
  local function start(i, last)
    return asyncio.create_task(function() threads[i] = coroutine.running() return last() end)
  end
  local a = start(1, function() await(asyncio.sleep(0.01)) end)
  local b = start(2, function() return await(fut) end)
  local c = start(3, function() end)
  await(asyncio.sleep(0))
  fut:set_result("v")
  return threads[1] == threads[2] and threads[2] == threads[3], await(b), select("#", await(a))
end))
LUA
expect "stock lua5.4: a body's last await gives its thread to the next task" 0 $'true\tv\t0' -- \
  env LD_PRELOAD="$PRELOAD" LUA_CPATH="$MODULE_DIR/?.so" lua5.4 "$TMP/tail.lua"
