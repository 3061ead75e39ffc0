-- core_futures_spec.lua — asyncio.Future: state, results, errors, cancellation, done
-- callbacks. Mirrors CPython's test_futures.py (BaseFutureTests, BaseFutureDoneCallbackTests).

local support = require "tests.support"
local Future, sleep, create_task = asyncio.Future, asyncio.sleep, asyncio.create_task
local gather = asyncio.gather
local CancelledError, InvalidStateError = asyncio.CancelledError, asyncio.InvalidStateError
local pack = table.pack

-- every spec awaits or cancels what it creates: fail the one that leaves tasks running
after_each(support.expect_no_tasks_left)

local raises = support.raises

describe("Future state", function()
  it("starts pending: result() and exception() raise InvalidStateError (test_initial_state)", function()
    local f = Future()
    assert.is_false(f:done())
    assert.is_false(f:cancelled())
    local e = raises(f.result, f)
    assert.is_true(InvalidStateError:is(e))
    assert.matches("pending", e.message)
    assert.is_true(InvalidStateError:is(raises(f.exception, f)))
    f:cancel()
  end)

  it("set_result stores all values; exception() is nil (test_result)", function()
    local f = Future()
    f:set_result(1, nil, "three")
    assert.is_true(f:done())
    assert.is_false(f:cancelled())
    assert.are.same({ n = 3, 1, nil, "three" }, pack(f:result()))
    assert.is_nil(f:exception())
    assert.are.equal(0, select("#", f:exception()))
  end)

  it("set_result with no values gives no results, a single value gives it", function()
    local f, g = Future(), Future()
    f:set_result()
    g:set_result(false)
    assert.are.equal(0, select("#", f:result()))
    assert.are.same({ n = 1, false }, pack(g:result()))
  end)

  it("set_result or set_exception on a done future raises InvalidStateError (test_result)", function()
    local f = Future()
    f:set_result(1)
    local e = raises(f.set_result, f, 2)
    assert.is_true(InvalidStateError:is(e))
    assert.matches("already done", e.message)
    assert.is_true(InvalidStateError:is(raises(f.set_exception, f, "x")))
    assert.are.equal(1, f:result())
    local c = Future()
    c:cancel()
    assert.is_true(InvalidStateError:is(raises(c.set_result, c, 1)))
  end)

  it("set_exception: result() raises the same value, exception() returns it (test_exception)", function()
    local f = Future()
    local err = { code = 7 }
    f:set_exception(err)
    assert.is_true(f:done())
    assert.are.equal(err, f:exception())
    assert.are.equal(err, raises(f.result, f))
    local g = Future()
    g:set_exception("plain string")
    assert.are.equal("plain string", raises(g.result, g))
  end)

  it("set_exception(nil) is an error", function()
    local f = Future()
    assert.matches("error value expected", tostring(raises(f.set_exception, f, nil)))
    assert.is_false(f:done())
    f:cancel()
  end)

  it("cancel() makes it cancelled; result() and exception() raise CancelledError (test_cancel)", function()
    local f = Future()
    assert.is_true(f:cancel())
    assert.is_true(f:done())
    assert.is_true(f:cancelled())
    assert.is_true(CancelledError:is(raises(f.result, f)))
    assert.is_true(CancelledError:is(raises(f.exception, f)))
    assert.is_false(f:cancel(), "cancelling twice")
  end)

  it("cancel(msg) carries the message to the CancelledError (test_future_cancel_message_getter)", function()
    local f = Future()
    f:cancel("my message")
    local e = raises(f.result, f)
    assert.are.equal("CancelledError", e.type)
    assert.are.equal("my message", e.message)
  end)

  it("cancel() of a done future returns false and changes nothing", function()
    local f = Future()
    f:set_result("v")
    assert.is_false(f:cancel())
    assert.is_false(f:cancelled())
    assert.are.equal("v", f:result())
  end)

  it("has a name, a loop and a readable tostring (test_future_repr)", function()
    local f = Future()
    assert.are.equal("Future", f:get_name())
    f:set_name("mine")
    assert.are.equal("mine", f:get_name())
    assert.are.equal(asyncio.get_running_loop(), f:get_loop())
    assert.matches("<Future pending", tostring(f))
    f:set_result(1)
    assert.matches("<Future finished", tostring(f))
    local c = Future()
    c:cancel()
    assert.matches("<Future cancelled", tostring(c))
    local e = Future()
    e:set_exception("boom")
    e:exception()
    assert.matches("exception=boom", tostring(e))
  end)

  it("a method called on something else is a clear error", function()
    assert.matches("Future", tostring(raises(Future().done, {})))
  end)
end)

describe("awaiting a Future", function()
  it("suspends the task until set_result, then returns all values", function()
    local f = Future()
    local t = create_task(function() return await(f) end)
    await(sleep(0))
    assert.is_false(t:done())
    f:set_result("a", "b")
    assert.are.same({ n = 2, "a", "b" }, pack(await(t)))
  end)

  it("at top level runs the loop until a callback resolves it", function()
    local f = Future()
    asyncio.get_running_loop():call_later(0.01, function() f:set_result(42) end)
    assert.are.equal(42, await(f))
  end)

  it("raises the exception set on it, unchanged", function()
    local f = Future()
    local err = setmetatable({}, { __tostring = function() return "custom" end })
    asyncio.get_running_loop():call_soon(function() f:set_exception(err) end)
    local ok, got = pcall(await, f)
    assert.is_false(ok)
    assert.are.equal(err, got)
  end)

  it("raises CancelledError when it is cancelled", function()
    local f = Future()
    local t = create_task(function() return await(f) end)
    await(sleep(0))
    f:cancel("stop")
    local ok, e = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(CancelledError:is(e))
    assert.is_true(t:cancelled())
  end)

  it("wakes every task awaiting it, in the order they started waiting", function()
    local f, log = Future(), {}
    local ts = {}
    for i = 1, 3 do
      ts[i] = create_task(function()
        local v = await(f)
        log[#log + 1] = i .. v
      end)
    end
    await(sleep(0))
    f:set_result("!")
    await(asyncio.gather(table.unpack(ts)))
    assert.are.same({ "1!", "2!", "3!" }, log)
  end)

  it("waiters of every kind leave from any place among the others, which still wake in order", function()
    -- tasks, done callbacks and gathers' child entries share one list per future
    local f, log = Future(), {}
    local function waiting(name)
      local t = create_task(function()
        local v = await(f)
        log[#log + 1] = name .. ":" .. v
      end)
      await(sleep(0))
      return t
    end
    local function note(name) return function() log[#log + 1] = name end end
    local a, b, d = note("a"), note("b"), note("d")
    f:add_done_callback(d)
    local t1 = waiting("t1")
    local g1 = gather(f)
    f:add_done_callback(a)
    local g2 = gather(f, f)
    f:add_done_callback(b)
    local t3 = waiting("t3")
    assert.are.equal(1, f:remove_done_callback(b)) -- between a task and a gather's entry
    assert.are.equal(1, f:remove_done_callback(a)) -- between two gathers' entries
    assert.are.equal(1, f:remove_done_callback(d)) -- the first to wait
    f:add_done_callback(note("c"))
    local t4 = waiting("t4")
    f:set_result("v")
    assert.are.same({ n = 2, "v", "v" }, pack(await(g2)))
    assert.are.same({ n = 1, "v" }, pack(await(g1)))
    await(t1); await(t3); await(t4)
    assert.are.same({ "t1:v", "t3:v", "c", "t4:v" }, log)
  end)

  it("ensure_future returns a Future as is, and wraps a coroutine object in a Task", function()
    local f = Future()
    assert.are.equal(f, asyncio.ensure_future(f))
    f:cancel()
    local t = asyncio.ensure_future(async(function() return "t" end)())
    assert.matches("^<Task", tostring(t))
    assert.are.equal("t", await(t))
    assert.matches("expected a coroutine object, Task or Future, got number",
      tostring(raises(asyncio.ensure_future, 42)))
  end)

  it("a sleep's future cannot be resolved by hand", function()
    local s = sleep(0.01)
    local f = asyncio.ensure_future(s)
    assert.matches("resolves by itself", tostring(raises(f.set_result, f, 1)))
    await(f)
  end)
end)

describe("done callbacks", function()
  it("are scheduled with call_soon, never called inside set_result, in the order added (test_callbacks_invoked_on_set_result)", function()
    local f, log = Future(), {}
    f:add_done_callback(function(fut) log[#log + 1] = { "a", fut } end)
    f:add_done_callback(function(fut) log[#log + 1] = { "b", fut } end)
    f:set_result(1)
    assert.are.equal(0, #log, "called inside set_result")
    await(sleep(0))
    assert.are.equal(2, #log)
    assert.are.equal("a", log[1][1])
    assert.are.equal("b", log[2][1])
    assert.are.equal(f, log[1][2])
  end)

  it("run after set_exception and after cancel (test_callbacks_invoked_on_set_exception)", function()
    local f, g, log = Future(), Future(), {}
    f:add_done_callback(function(x) log[#log + 1] = x:exception() end)
    g:add_done_callback(function(x) log[#log + 1] = x:cancelled() end)
    f:set_exception("bad")
    g:cancel()
    await(sleep(0))
    assert.are.same({ "bad", true }, log)
  end)

  it("added to a done future are scheduled soon, not called at once", function()
    local f, called = Future(), false
    f:set_result(1)
    f:add_done_callback(function() called = true end)
    assert.is_false(called)
    await(sleep(0))
    assert.is_true(called)
  end)

  it("remove_done_callback removes every registration and returns the count (test_remove_done_callback)", function()
    local f, log = Future(), {}
    local function a() log[#log + 1] = "a" end
    local function b() log[#log + 1] = "b" end
    f:add_done_callback(a)
    f:add_done_callback(b)
    f:add_done_callback(a)
    assert.are.equal(2, f:remove_done_callback(a))
    assert.are.equal(0, f:remove_done_callback(a))
    assert.are.equal(0, f:remove_done_callback(function() end))
    f:set_result()
    await(sleep(0))
    assert.are.same({ "b" }, log)
  end)

  it("remove_done_callback after the future is done removes nothing (test_remove_done_callbacks_list_clear)", function()
    local f = Future()
    local function a() end
    f:add_done_callback(a)
    f:set_result()
    await(sleep(0))
    assert.are.equal(0, f:remove_done_callback(a))
  end)

  it("an error in one callback does not stop the others", function()
    local f, ran = Future(), false
    f:add_done_callback(function() error("done callback failure (expected in this spec's stderr)") end)
    f:add_done_callback(function() ran = true end)
    f:set_result()
    await(sleep(0.01))
    assert.is_true(ran)
  end)

  it("reject a non-function", function()
    local f = Future()
    assert.matches("function expected", tostring(raises(f.add_done_callback, f, 1)))
    assert.matches("function expected", tostring(raises(f.remove_done_callback, f, nil)))
  end)

  it("a callback added to a task gets the task", function()
    local got
    local t = create_task(function() return 1 end)
    t:add_done_callback(function(x) got = x end)
    await(t)
    await(sleep(0))
    assert.are.equal(t, got)
  end)
end)
