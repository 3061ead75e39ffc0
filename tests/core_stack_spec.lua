-- core_stack_spec.lua — a task's thread keeps only the stack it uses once its first step
-- ends in an await (async/core/stack.c): the cut moves every frame, open upvalue and
-- to-be-closed variable of a suspended task to a smaller block, and whatever the task
-- does afterwards (deeper calls, errors, cancellation, debug views) must not notice.
-- The alua command links Lua statically, so the cut is available in every spec here;
-- tests/cli/module.sh runs a task the same way under stock lua5.4, where it is not.

local support = require "tests.support"
local sleep, create_task = asyncio.sleep, asyncio.create_task
local raises = support.raises

after_each(support.expect_no_tasks_left)

local function closer(fn) return setmetatable({}, { __close = fn }) end

-- depth n of plain Lua recursion, with a C call (string.rep) at every level and a pcall
-- every 50 (Lua allows 200 nested C calls)
local function deep(n)
  if n == 0 then return 0 end
  local v
  if n % 50 == 0 then
    local ok
    ok, v = pcall(deep, n - 1)
    assert(ok, v)
  else
    v = deep(n - 1)
  end
  return v + #string.rep("x", 1)
end

describe("a task's stack cut at its first await", function()
  it("then grows again for deep recursion, and awaits from deep down", function()
    local async function deep_await(n)
      if n == 0 then
        await(sleep(0))
        return 0
      end
      local a, b, c = n, n * 2, n * 3 -- locals below the callee's frame, kept through the move
      local r = await(deep_await(n - 1))
      assert(a == n and b == n * 2 and c == n * 3)
      return r + 1
    end
    local t = create_task(function()
      await(sleep(0)) -- the first step ends here, shallow: the cut
      local d = deep(5000)
      local r = await(deep_await(150))
      return d, r
    end)
    local d, r = await(t)
    assert.are.equal(5000, d)
    assert.are.equal(150, r)
  end)

  it("keeps open upvalues pointing at the moved locals", function()
    local get, set
    local gate = asyncio.Future()
    local t = create_task(function()
      local x, y = 1, "a"
      get = function() return x, y end
      set = function(v) x = v end
      await(gate) -- x and y are open upvalues on the stack being cut
      x = x + 10 -- the body's write, seen by the closures
      await(sleep(0))
      return x, y
    end)
    await(sleep(0))
    assert.are.same({ 1, "a" }, { get() })
    set(5) -- the closure's write, seen by the body after it resumes
    gate:set_result(true)
    local x, y = await(t)
    assert.are.equal(15, x)
    assert.are.equal("a", y)
    assert.are.same({ 15, "a" }, { get() }) -- closed now, with the last value
  end)

  it("runs to-be-closed variables across the cut, in order, on return and on error", function()
    local log = {}
    local ok_task = create_task(function()
      local a <close> = closer(function() log[#log + 1] = "a" end)
      local b <close> = closer(function() log[#log + 1] = "b" end)
      await(sleep(0))
      deep(300)
      return "done"
    end)
    assert.are.equal("done", await(ok_task))
    assert.are.same({ "b", "a" }, log)

    log = {}
    local bad = create_task(function()
      local a <close> = closer(function(_, e) log[#log + 1] = "a:" .. tostring(e):match("boom") end)
      await(sleep(0))
      local b <close> = closer(function() log[#log + 1] = "b" end)
      error("boom")
    end)
    local e = raises(await, bad)
    assert.matches("boom", tostring(e))
    assert.are.same({ "b", "a:boom" }, log)
  end)

  it("lets an awaiting __close run while an error unwinds the cut stack", function()
    local log = {}
    local t = create_task(function()
      local c <close> = closer(function(_, e)
        log[#log + 1] = "closing:" .. tostring(e):match("late")
        await(sleep(0)) -- suspends again while the error unwinds
        deep(200)
        log[#log + 1] = "closed"
      end)
      await(sleep(0))
      error("late")
    end)
    assert.matches("late", tostring(raises(await, t)))
    assert.are.same({ "closing:late", "closed" }, log)
  end)

  it("gives the error's traceback the right lines after the cut", function()
    -- a failing task nobody awaits reports its traceback, taken where the error was raised
    local out, status = support.run_alua_checked([[
local function fail_here() error("deep failure") end
local function go(n) if n == 0 then fail_here() end go(n - 1); return n end
local t = asyncio.create_task(function() await(asyncio.sleep(0)); go(3) end)
await(asyncio.sleep(0.05))
]])
    assert.are.equal(0, status, out)
    assert.matches("Task exception was never retrieved\n[^\n]*:1: deep failure\nstack traceback:\n", out)
    assert.matches(":1: in upvalue 'fail_here'\n", out)
    local _, gos = out:gsub(":2: in upvalue 'go'\n", "")
    assert.are.equal(4, gos, out)
    assert.matches(":3: in function <[^>]*:3>\n", out)
  end)

  it("shows a cut task's frames in get_stack and print_tasks", function()
    local line
    local async function parked()
      line = debug.getinfo(1, "l").currentline + 1
      await(sleep(3600))
    end
    local t = create_task(parked(), "parked")
    await(sleep(0))
    local found = false
    for _, f in ipairs(t:get_stack()) do
      if f.source:find("core_stack_spec.lua", 1, true) and f.line == line then found = true end
    end
    assert.is_true(found, "no frame at the sleep's line")
    local out = assert(io.tmpfile())
    asyncio.print_tasks(out)
    out:seek("set")
    local text = out:read("a")
    out:close()
    assert.is_truthy(text:find("Task 'parked'", 1, true), text)
    assert.is_truthy(text:find("core_stack_spec.lua:" .. line, 1, true), text)
    t:cancel()
    assert.is_true(asyncio.CancelledError:is(raises(await, t)))
  end)

  it("keeps a coroutine the task wraps, suspended inside it, working", function()
    local t = create_task(function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do
          await(sleep(0)) -- suspends the task from inside the coroutine: the first one cuts
          coroutine.yield(i + deep(50))
        end
      end)
      local sum = 0
      for _ = 1, 3 do sum = sum + gen() end
      return sum
    end)
    assert.are.equal(6 + 150, await(t))
  end)

  it("cancels a cut task: CancelledError through its handlers, then deeper code", function()
    local log = {}
    local t = create_task(function()
      local c <close> = closer(function() log[#log + 1] = "closed" end)
      local ok, e = pcall(await, sleep(3600))
      log[#log + 1] = asyncio.CancelledError:is(e) and "cancelled" or tostring(ok)
      deep(500)
      error(e, 0)
    end)
    await(sleep(0))
    t:cancel()
    assert.is_true(asyncio.CancelledError:is(raises(await, t)))
    assert.is_true(t:cancelled())
    assert.are.same({ "cancelled", "closed" }, log)
  end)

  it("handles a thread that ran other tasks to their end in the same first step", function()
    -- tasks that end in their first step share one thread (task.c's batching); the last
    -- of them suspends and keeps it: its stack is the one cut
    local results, tasks = {}, {}
    for i = 1, 20 do
      tasks[i] = create_task(function()
        if i == 20 then
          local x = i
          await(sleep(0))
          results[i] = x + deep(200)
        else
          results[i] = i
        end
      end)
    end
    await(asyncio.gather(table.unpack(tasks)))
    for i = 1, 19 do assert.are.equal(i, results[i]) end
    assert.are.equal(220, results[20])
  end)

  it("runs the next tasks on a cut thread from the pool, deeper at once", function()
    -- the cut threads of finished tasks go back to the pool as they are (34 slots); the
    -- next tasks' first steps grow them again
    local first = {}
    for i = 1, 50 do first[i] = create_task(function() await(sleep(0)) return i end) end
    await(asyncio.gather(table.unpack(first)))
    local again = {}
    for i = 1, 50 do
      again[i] = create_task(function()
        local v = deep(30) -- deeper than the cut stack, before any await
        await(sleep(0))
        return v + i
      end)
    end
    local r = { await(asyncio.gather(table.unpack(again))) }
    for i = 1, 50 do assert.are.equal(30 + i, r[i]) end
  end)

  -- The cut itself, seen in Lua's heap: a task suspended in its first step holds a thread
  -- with three frames (task_main, the body, the await); a plain coroutine suspended in
  -- pcall(coroutine.yield) holds one with three too, but the 40-slot stack every new
  -- thread gets. The task's thread must cost at least 3 slots (48 bytes) less.
  it("a suspended task's thread costs less Lua heap than a suspended coroutine's", function()
    local out, status = support.run_alua_checked([[
local N = 2000
local function heap() collectgarbage() collectgarbage() return collectgarbage("count") * 1024 end
local gate = asyncio.Future()
local body = async(function() await(gate) end)
local tasks = {}
for i = 1, N do tasks[i] = false end
for i = 1, N do tasks[i] = asyncio.create_task(body()) end
local before = heap() -- Tasks made, not started: no thread yet
await(asyncio.sleep(0)) -- each first step ends in the await: a thread each, suspended
local per_task = (heap() - before) / N

local function co_body() pcall(coroutine.yield) end
local cos = {}
for i = 1, N do cos[i] = false end
before = heap()
for i = 1, N do
  cos[i] = coroutine.create(co_body)
  coroutine.resume(cos[i])
end
local per_co = (heap() - before) / N
print(("task %.1f coroutine %.1f"):format(per_task, per_co))
gate:set_result(true)
await(asyncio.gather(table.unpack(tasks)))
]])
    assert.are.equal(0, status, out)
    local per_task, per_co = out:match("task ([%d.]+) coroutine ([%d.]+)")
    assert.is_truthy(per_task, out)
    per_task, per_co = tonumber(per_task), tonumber(per_co)
    assert.is_true(per_co > 900, out) -- a thread with its first stack and three CallInfos
    assert.is_true(per_task <= per_co - 48, out)
  end)
end)
