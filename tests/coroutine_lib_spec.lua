-- coroutine_lib_spec.lua — alua's coroutine.wrap (patched so that await passes through
-- user coroutines) keeps the stock Lua 5.4.4 semantics when a wrapped coroutine fails:
-- it is closed, its pending <close> handlers run with the error, and the error the
-- closing ends with is raised (the cases of the official suite's locals.lua and
-- coroutine.lua), in plain code and inside a task after an await.

local support = require "tests.support"
local raises, in_task = support.raises, support.in_task
local sleep = asyncio.sleep

after_each(support.expect_no_tasks_left)

local function closer(fn) return setmetatable({}, { __close = fn }) end

-- Each case runs twice: as plain Lua, and in a task where the coroutine first awaits
-- (the await passes through wrap) before it fails.
local function both(name, body)
  it(name .. " (plain Lua)", function() body(function() end) end)
  it(name .. " (inside a task, after an await through the wrap)",
    in_task(function() body(function() await(sleep(0)) end) end))
end

describe("coroutine.wrap when the coroutine fails", function()
  both("closes it: a handler's error replaces the body's, and the next handler sees it", function(pause)
    local seen = {}
    local co = coroutine.wrap(function()
      local outer <close> = closer(function(_, err)
        seen[#seen + 1] = err
        error("@YYY")
      end)
      local inner <close> = closer(function(_, err)
        seen[#seen + 1] = err
        error("@XXX")
      end)
      pause()
      coroutine.yield(100)
      error(200)
    end)
    assert.are.equal(100, co())
    local err = raises(co)
    assert.are.equal(200, seen[1])
    assert.matches("@XXX", seen[2])
    assert.matches("@YYY", err)
    assert.not_matches("@XXX", err)
  end)

  both("an error while returning: the remaining handlers run, the last error keeps its position", function(pause)
    local x, y, seen = 0, 0, nil
    local co = coroutine.wrap(function()
      local outer <close> = closer(function(_, err)
        y = y + 1
        seen = err
        error("YYY")
      end)
      local inner <close> = closer(function()
        x = x + 1
        error("XXX")
      end)
      pause()
      coroutine.yield(100)
      return 200
    end)
    assert.are.equal(100, co())
    local err = raises(co)
    assert.are.same({ 1, 1 }, { x, y })
    assert.matches("XXX", seen)
    assert.matches("^[%w_/]+%.lua:%d+: YYY$", err)
  end)

  both("a handler that calls the failing wrap again: the first error, then a dead coroutine", function(pause)
    local co, inner_ok, inner_err
    co = coroutine.wrap(function()
      local x <close> = closer(function() inner_ok, inner_err = pcall(co) end)
      pause()
      error(111)
    end)
    assert.are.equal(111, raises(co))
    assert.is_false(inner_ok)
    assert.matches("cannot resume non%-suspended coroutine", inner_err)
    assert.matches("cannot resume dead coroutine", raises(co))
  end)

  both("without <close> variables the body's error comes through with the caller's position", function(pause)
    local co = coroutine.wrap(function() pause(); error("plain", 0) end)
    assert.matches("^[%w_/]+%.lua:%d+: plain$", raises(function() co() end))
    assert.matches("cannot resume dead coroutine", raises(co))
    local t = {}
    co = coroutine.wrap(function() pause(); error(t) end)
    assert.are.equal(t, raises(co))
  end)
end)

-- A task's own Lua thread belongs to the loop, and so does a coroutine suspended in an
-- await it passed up to its task: resuming or closing one from elsewhere would run the
-- task's code out of turn or kill it under the scheduler, so both are refused.
describe("a task's own thread", function()
  it("coroutine.resume of another task's suspended thread is a clear error; the task goes on", in_task(function()
    local thread
    local t = asyncio.create_task(function()
      thread = coroutine.running()
      local v = await(sleep(0.05, "slept"))
      return v, asyncio.current_task() ~= nil
    end)
    await(sleep(0))
    assert.are.equal("suspended", coroutine.status(thread))
    local err = raises(coroutine.resume, thread)
    assert.matches("coroutine.resume: cannot resume a task's own thread", tostring(err))
    assert.is_false(t:done())
    assert.are.same({ "slept", true }, { await(t) })
  end))

  it("coroutine.close of a task's suspended thread is a clear error; the task goes on", in_task(function()
    local thread
    local f = asyncio.Future()
    local t = asyncio.create_task(function()
      thread = coroutine.running()
      local v = await(f) -- kept on its thread: a last `return await(f)` gives it back (below)
      return v
    end)
    await(sleep(0))
    local err = raises(coroutine.close, thread)
    assert.matches("coroutine.close: cannot close a task's own thread", tostring(err))
    f:set_result("result")
    assert.are.equal("result", await(t))
  end))

  it("coroutine.close of the thread a task gave back at its last await leaves the task alone", in_task(function()
    local thread
    local f = asyncio.Future()
    local t = asyncio.create_task(function()
      thread = coroutine.running()
      return await(f) -- a tail await (async/core/tail.c): the thread goes back to the pool
    end)
    await(sleep(0))
    assert.are.equal("dead", coroutine.status(thread))
    assert.is_true(coroutine.close(thread))
    f:set_result("result")
    assert.are.equal("result", await(t))
    local u = asyncio.create_task(function() return await(sleep(0.01, "next")) end)
    assert.are.equal("next", await(u)) -- the closed thread served again
  end))

  it("coroutine.close of a coroutine suspended in an await is a clear error", in_task(function()
    local gen = coroutine.create(function() coroutine.yield(await(sleep(0.02, "v"))) end)
    local t = asyncio.create_task(function() return coroutine.resume(gen) end)
    await(sleep(0))
    local err = raises(coroutine.close, gen)
    assert.matches("coroutine.close: cannot close a coroutine suspended in an await", tostring(err))
    assert.are.same({ true, "v" }, { await(t) })
    assert.is_true(coroutine.close(gen)) -- suspended in its own yield now: closes
  end))

  it("once the task is done its thread is a dead coroutine, also when the pool is full", in_task(function()
    -- more tasks end at once than the loop keeps threads for (1,024): the threads it
    -- does not keep must not go on naming their (collected) tasks
    local threads, tasks = {}, {}
    for i = 1, 1100 do
      tasks[i] = asyncio.create_task(function() threads[i] = coroutine.running(); await(sleep(0)) end)
    end
    await(asyncio.gather(table.unpack(tasks)))
    tasks = nil
    collectgarbage()
    collectgarbage()
    for i = 1, #threads, 37 do
      assert.are.same({ false, "cannot resume dead coroutine" }, { coroutine.resume(threads[i]) })
      assert.is_true(coroutine.close(threads[i]))
    end
    assert.is_true(coroutine.close(threads[1100]))
  end))

  it("coroutine.close runs the handlers of a coroutine a finished task resumed as the closer's code", function()
    -- the coroutine named the task that resumed it last; that task is collected and its
    -- memory taken again before the handlers run (a use after free before)
    local seen = {}
    local co
    await(asyncio.create_task(function()
      co = coroutine.create(function()
        local _ <close> = closer(function() seen[#seen + 1] = asyncio.current_task() or "none" end)
        coroutine.yield()
      end)
      coroutine.resume(co)
    end))
    collectgarbage()
    collectgarbage()
    local others = {}
    for i = 1, 100 do others[i] = asyncio.create_task(function() end) end
    assert.is_true(coroutine.close(co))
    local f = asyncio.Future()
    local t = asyncio.create_task(function()
      co = coroutine.create(function()
        local _ <close> = closer(function() seen[#seen + 1] = asyncio.current_task() or "none" end)
        coroutine.yield()
      end)
      coroutine.resume(co)
      await(f)
      assert.is_true(coroutine.close(co))
    end)
    await(sleep(0))
    f:set_result(true)
    await(t)
    await(asyncio.gather(table.unpack(others)))
    assert.are.same({ "none", t }, seen)
  end)

  it("a coroutine the task made is still the task's to resume and close", in_task(function()
    local gen = coroutine.create(function() coroutine.yield(1); return 2 end)
    assert.are.same({ true, 1 }, { coroutine.resume(gen) })
    assert.is_true(coroutine.close(gen))
  end))
end)
