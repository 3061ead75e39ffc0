-- stress_workers_spec.lua — workers under load: a million messages each way at once,
-- none lost or reordered; hundreds of workers started and terminated with memory and
-- descriptors back where they were.
-- Sizes: STRESS=quick (valgrind: 20,000 messages, 20 workers), default (1,000,000
-- messages each way, 200 workers), STRESS=full (5,000,000 messages, 1,000 workers).

local support = require "tests.support"

local MODE = os.getenv("STRESS") or "default"
local MESSAGES = ({ quick = 20000, full = 5000000 })[MODE] or 1000000
local WORKERS = ({ quick = 20, full = 1000 })[MODE] or 200

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local function script(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Read in-process: counting with io.popen("ls ...") also counted, now and then, both
-- ends of popen's own pipe (ls can run before the parent has closed the child's end).
local function open_fds()
  return #await(asyncio.fs.scandir("/proc/self/fd"))
end

local function resident_kib()
  local f = io.open("/proc/self/statm")
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end

describe("workers under load", function()
  it(("pass %d messages each way at once, none lost or reordered"):format(MESSAGES), function()
    local path = script [[
      local n = ...
      local sender = asyncio.create_task(async(function()
        for i = 1, n do
          asyncio.parent:send(i)
          if i % 4096 == 0 then await asyncio.sleep(0) end
        end
      end))
      for i = 1, n do
        local m = await asyncio.parent:recv()
        if m ~= i then error(("worker: message %d arrived as %s"):format(i, tostring(m))) end
      end
      await sender
      return n
    ]]
    local w = await(asyncio.start_worker(path, MESSAGES))
    local sender = asyncio.create_task(function()
      for i = 1, MESSAGES do
        w:send(i)
        if i % 4096 == 0 then await(asyncio.sleep(0)) end
      end
    end)
    for i = 1, MESSAGES do
      local m = await(w:recv())
      if m ~= i then error(("main: message %d arrived as %s"):format(i, tostring(m))) end
    end
    await(sender)
    assert.are.equal(MESSAGES, await(asyncio.wait_for(w:wait(), 60)))
    assert.is_nil(await(w:recv()))
    os.remove(path)
  end)

  it(("start and terminate %d workers with memory and descriptors back"):format(WORKERS), function()
    local idle = script [[
      asyncio.parent:send("up")
      await asyncio.parent:recv()
    ]]
    local spinning = script [[
      asyncio.parent:send("up")
      while true do end
    ]]
    local function cycle(i)
      local w = await(asyncio.start_worker(i % 2 == 0 and idle or spinning))
      assert.are.equal("up", await(asyncio.wait_for(w:recv(), 10)))
      w:terminate()
      local ok, err = pcall(await, asyncio.wait_for(w:wait(), 10))
      assert.is_false(ok)
      assert.is_true(asyncio.CancelledError:is(err), tostring(err))
    end
    -- A worker is reaped (its thread joined, its wake-up descriptor closed at the end of
    -- a loop iteration) when its end is seen in poll, which can come after wait() has
    -- returned (it reads the ended flag itself): let the loop turn until the count of
    -- descriptors holds still for a few turns (on a loaded machine a thread may take
    -- longer than three turns to end), within a bound.
    -- (Collect first: a Worker the collector frees closes its descriptor at the next
    -- loop iteration, which settle() then waits for.)
    local function settle()
      local deadline = asyncio.get_running_loop():time() + 10 * support.SLOWDOWN
      local last, still = open_fds(), 0
      while still < 3 and asyncio.get_running_loop():time() < deadline do
        await(asyncio.sleep(0.02))
        local now = open_fds()
        still = now == last and still + 1 or 0
        last = now
      end
    end
    -- warm up: the allocator's per-thread arenas and Lua's own pools reach their size
    for i = 1, 20 do cycle(i) end
    collectgarbage()
    collectgarbage()
    settle()
    local fds, rss, lua_kib = open_fds(), resident_kib(), collectgarbage("count")
    for i = 1, WORKERS do cycle(i) end
    collectgarbage()
    collectgarbage()
    settle()
    assert.are.equal(fds, open_fds(), "descriptors")
    assert.is_true(collectgarbage("count") < lua_kib + 256,
      ("Lua memory %.0f KiB -> %.0f KiB"):format(lua_kib, collectgarbage("count")))
    -- (under ASan or valgrind freed memory is held back on purpose: RSS says nothing)
    local instrumented = os.getenv("ASAN_OPTIONS") or (os.getenv("ALUA_RUNNER") or ""):match("valgrind")
    local grown = resident_kib() - rss
    assert.is_true(instrumented ~= nil or grown < 8192,
      ("resident memory grew by %d KiB over %d workers"):format(grown, WORKERS))
    os.remove(idle)
    os.remove(spinning)
  end)
end)
