-- sleeper_memory.lua — what one sleeping task of workload C costs in memory, piece by piece
-- (Lua heap bytes from collectgarbage("count"), the GC stopped while measuring), and how
-- long creating the tasks and their first step take. Not a benchmark: a breakdown for
-- bench/RESULTS.md.   usage: alua bench/sleeper_memory.lua [N]
local asyncio = require "asyncio"
local N = tonumber(arg[1]) or 100000

local function status_kb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s*(%d+)")
    if v then return tonumber(v) end
  end
end

local function per(a, b) return string.format("%5.0f", (b - a) * 1024 / N) end

-- single objects, N of each kept alive in a list
local function each(name, make)
  local t = {}
  for i = 1, N do t[i] = false end
  local k0 = collectgarbage("count")
  for i = 1, N do t[i] = make(i) end
  print(string.format("  %-46s %s bytes", name, per(k0, collectgarbage("count"))))
  return t
end

local async function sleeper(d) await asyncio.sleep(d) end -- as bench/alua/timers.lua
local main = async(function()
  local loop = asyncio.get_running_loop()
  collectgarbage()
  collectgarbage("stop")
  local k0, r0 = collectgarbage("count"), status_kb("VmRSS")
  local t0 = loop:time()
  local tasks = {}
  for i = 1, N do tasks[i] = false end
  local k1 = collectgarbage("count")
  local coros = {}
  for i = 1, N do coros[i] = sleeper(1.0) end
  local k2 = collectgarbage("count")
  for i = 1, N do tasks[i] = asyncio.create_task(coros[i]) end
  coros = nil
  local k3 = collectgarbage("count")
  local t1 = loop:time()
  await(asyncio.sleep(0)) -- every task has run its first step: all are asleep
  local t2 = loop:time()
  local k4 = collectgarbage("count")
  local g = asyncio.gather(table.unpack(tasks))
  local k5 = collectgarbage("count")
  collectgarbage()
  local k6 = collectgarbage("count")
  local r6 = status_kb("VmRSS")
  print("a sleeping task of workload C (sleeper(1.0) wrapped by create_task):")
  print("  slot in the list of tasks                     " .. per(k0, k1) .. " bytes")
  print("  coroutine object (garbage after the first step)" .. per(k1, k2) .. " bytes")
  print("  create_task (the Task)                        " .. per(k2, k3) .. " bytes")
  print("  first step (its thread, suspended in sleep)   " .. per(k3, k4) .. " bytes")
  print("  gather's share (its child entry and list slot)" .. per(k4, k5) .. " bytes")
  print("  all of it after a full collection             " .. per(k0, k6) .. " bytes")
  print("  RSS growth (malloc headers, C arrays, pages)  " .. per(r0, r6) .. " bytes")
  print(string.format("create: %.0f ns/task; first step: %.0f ns/task (GC stopped)",
    (t1 - t0) * 1e9 / N, (t2 - t1) * 1e9 / N))
  g:cancel()
  pcall(await, g)
  tasks = nil
  collectgarbage()
  collectgarbage("stop")
  print("single objects:")
  each("empty thread (lua_newthread)", function() return coroutine.create(print) end)
  each("thread suspended in 1 Lua frame", function()
    local co = coroutine.create(function() coroutine.yield() end)
    coroutine.resume(co)
    return co
  end)
  each("thread suspended in 3 Lua frames", function()
    local co = coroutine.create(function() (function() (function() coroutine.yield() end)() end)() end)
    coroutine.resume(co)
    return co
  end)
  local keep = each("asyncio.sleep(1.0) (a coroutine object)", function() return asyncio.sleep(1.0) end)
  for i = 1, N do asyncio.ensure_future(keep[i]):cancel() end -- no "never awaited" report
  local f = async(function() end)
  keep = each("coroutine object f()", function() return f() end)
  for i = 1, N do asyncio.create_task(keep[i]) end -- wrapped: no "never awaited" report
  keep = nil
  await(asyncio.sleep(0))
end)

asyncio.run(main())
