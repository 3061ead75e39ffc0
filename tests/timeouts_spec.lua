-- timeouts_spec.lua — asyncio.timeout / timeout_at scopes (<close>) and with_timeout.
-- Ports the behaviours of CPython's test_timeouts.py (named in each description).

local support = require "tests.support"
local sleep, create_task, current_task = asyncio.sleep, asyncio.create_task, asyncio.current_task
local timeout, timeout_at = asyncio.timeout, asyncio.timeout_at
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local function in_task(fn)
  return function() return await(create_task(fn)) end
end

local raises = support.raises

local function raises_class(class, fn, ...)
  local err = raises(fn, ...)
  assert.is_true(class:is(err), "expected a " .. class.name .. ", got " .. tostring(err))
  return err
end

local function now()
  return asyncio.get_running_loop():time()
end

-- keeps the loop busy without yielding, as time.sleep does in CPython's tests
local function block_for(seconds)
  local stop = now() + seconds
  while now() < stop do end
end

describe("timeout", function()
  it("test_timeout_basic: the expired scope raises TimeoutError", in_task(function()
    local cm
    raises_class(TimeoutError, function()
      cm = timeout(0.01)
      local _ <close> = cm
      await(sleep(10))
    end)
    assert.is_true(cm:expired())
  end))

  it("test_timeout_at_basic: an absolute deadline", in_task(function()
    local cm
    local deadline = now() + 0.01
    raises_class(TimeoutError, function()
      cm = timeout_at(deadline)
      local _ <close> = cm
      await(sleep(10))
    end)
    assert.is_true(cm:expired())
    assert.are.equal(deadline, cm:when())
  end))

  it("test_nested_timeouts: with the same deadline, only the outer scope raises TimeoutError", in_task(function()
    local cancelled = false
    local cm1, cm2
    local deadline = now() + 0.01
    raises_class(TimeoutError, function()
      cm1 = timeout_at(deadline)
      local _ <close> = cm1
      local ok, err = pcall(function()
        cm2 = timeout_at(deadline)
        local _ <close> = cm2
        await(sleep(10))
      end)
      assert.is_false(ok)
      cancelled = CancelledError:is(err)
      error(err, 0)
    end)
    assert.is_true(cancelled)
    assert.is_true(cm1:expired())
    assert.is_true(cm2:expired())
  end))

  it("test_waiter_cancelled: the awaited operation sees a CancelledError", in_task(function()
    local cancelled = false
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0.01)
      local ok, err = pcall(await, sleep(10))
      cancelled = not ok and CancelledError:is(err)
      error(err, 0)
    end)
    assert.is_true(cancelled)
  end))

  it("test_timeout_not_called: a scope left in time does not expire", in_task(function()
    local t0 = now()
    local cm
    do
      cm = timeout(10)
      local _ <close> = cm
      await(sleep(0.01))
    end
    local t1 = now()
    assert.is_false(cm:expired())
    assert.is_true(t1 - t0 < 2)
    assert.is_true(cm:when() > t1)
  end))

  it("test_timeout_disabled / test_timeout_at_disabled: nil means no deadline", in_task(function()
    for _, make in ipairs { timeout, timeout_at } do
      local cm
      do
        cm = make(nil)
        local _ <close> = cm
        await(sleep(0.01))
      end
      assert.is_false(cm:expired())
      assert.is_nil(cm:when())
    end
  end))

  it("test_timeout_zero: a zero delay expires at the first await", in_task(function()
    local t0 = now()
    local cm
    raises_class(TimeoutError, function()
      cm = timeout(0)
      local _ <close> = cm
      await(sleep(10))
    end)
    local t1 = now()
    assert.is_true(cm:expired())
    assert.is_true(t1 - t0 < 2)
    assert.is_true(t0 <= cm:when() and cm:when() <= t1)
  end))

  it("test_timeout_zero_sleep_zero: even at a sleep(0)", in_task(function()
    local cm
    raises_class(TimeoutError, function()
      cm = timeout(0)
      local _ <close> = cm
      await(sleep(0))
    end)
    assert.is_true(cm:expired())
  end))

  it("test_timeout_in_the_past_sleep_zero: a deadline in the past", in_task(function()
    local t0 = now()
    local cm
    raises_class(TimeoutError, function()
      cm = timeout(-11)
      local _ <close> = cm
      await(sleep(0))
    end)
    assert.is_true(cm:expired())
    assert.is_true(cm:when() <= t0)
  end))

  it("test_foreign_exception_passed: other errors pass through unchanged", in_task(function()
    local cm
    local err = raises(function()
      cm = timeout(0.01)
      local _ <close> = cm
      error("KeyError", 0)
    end)
    assert.are.equal("KeyError", err)
    assert.is_false(cm:expired())
  end))

  it("test_foreign_exception_on_timeout: an error raised while cancelled wins", in_task(function()
    local err = raises(function()
      local _ <close> = timeout(0.01)
      pcall(await, sleep(1))
      error("ZeroDivisionError", 0)
    end)
    assert.are.equal("ZeroDivisionError", err)
    assert.are.equal(0, current_task():cancelling())
  end))

  it("test_foreign_cancel_doesnt_timeout_if_not_expired", in_task(function()
    local cm
    raises_class(CancelledError, function()
      cm = timeout(10)
      local _ <close> = cm
      current_task():cancel()
      await(sleep(10))
    end)
    assert.is_false(cm:expired())
    current_task():uncancel()
  end))

  it("test_outer_task_is_not_cancelled: the task that caught the TimeoutError completes normally", in_task(function()
    local task = create_task(function()
      raises_class(TimeoutError, function()
        local _ <close> = timeout(0.001)
        await(sleep(10))
      end)
    end)
    await(task)
    assert.is_false(task:cancelled())
    assert.is_true(task:done())
    assert.are.equal(0, task:cancelling())
  end))

  it("test_nested_timeouts_concurrent: the outer deadline passes first", in_task(function()
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0.002)
      local err = raises(function()
        local _ <close> = timeout(0.1)
        block_for(0.01)
        await(sleep(1))
      end)
      assert.is_true(CancelledError:is(err), "the inner scope did not expire: " .. tostring(err))
      error(err, 0)
    end)
  end))

  it("test_nested_timeouts_loop_busy: both deadlines passed while busy; the outer still stops the work", in_task(function()
    local t0 = now()
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0.1)
      local ok, err = pcall(function()
        local _ <close> = timeout(0.01)
        block_for(0.1)
        await(sleep(1))
      end)
      assert.is_false(ok)
      -- (assertRaises(TimeoutError) lets anything else through)
      if not TimeoutError:is(err) then error(err, 0) end
      await(sleep(10))
    end)
    local t1 = now()
    assert.is_true(t1 - t0 < 1)
    assert.are.equal(0, current_task():cancelling())
  end))

  it("test_reschedule: when() follows reschedule; nil disables the deadline", in_task(function()
    local fut = asyncio.Future()
    local deadline1 = now() + 10
    local deadline2 = deadline1 + 20
    local task = create_task(function()
      local cm <close> = timeout_at(deadline1)
      fut:set_result(cm)
      await(sleep(50))
    end)
    local cm = await(fut)
    assert.are.equal(deadline1, cm:when())
    cm:reschedule(deadline2)
    assert.are.equal(deadline2, cm:when())
    cm:reschedule(nil)
    assert.is_nil(cm:when())
    task:cancel()
    raises_class(CancelledError, await, task)
    assert.is_false(cm:expired())
  end))

  it("leaving the scope, or rescheduling, drops the old deadline's timer", in_task(function()
    do
      local _ <close> = timeout(0.01)
    end
    await(sleep(0.03)) -- would be cancelled by a timer left behind
    local cm
    do
      cm = timeout(0.01)
      local _ <close> = cm
      cm:reschedule(nil)
      await(sleep(0.03))
    end
    assert.is_false(cm:expired())
    assert.are.equal(0, current_task():cancelling())
  end))

  it("reschedule can bring the deadline forward, or set one on a disabled scope", in_task(function()
    local cm
    local t0 = now()
    raises_class(TimeoutError, function()
      cm = timeout(nil)
      local _ <close> = cm
      cm:reschedule(now() + 0.01)
      await(sleep(10))
    end)
    assert.is_true(now() - t0 < 1)
    assert.is_true(cm:expired())
    raises_class(TimeoutError, function()
      local c <close> = timeout(10)
      c:reschedule(now() - 1)
      await(sleep(10))
    end)
  end))

  it("reschedule after the scope ends is an error naming the call", in_task(function()
    local cm
    do
      cm = timeout(1)
      local _ <close> = cm
    end
    assert.matches("Timeout:reschedule: cannot change the deadline of a finished timeout",
      tostring(raises(cm.reschedule, cm, now() + 1)))
    raises_class(TimeoutError, function()
      cm = timeout(0)
      local _ <close> = cm
      await(sleep(0))
    end)
    assert.matches("of an expired timeout", tostring(raises(cm.reschedule, cm, nil)))
  end))

  it("test_repr_active / test_repr_expired / test_repr_finished / test_repr_disabled", in_task(function()
    local cm = timeout(10)
    do
      local _ <close> = cm
      assert.matches("^Timeout %[active, when=%d+%.?%d*%]$", tostring(cm))
    end
    assert.are.equal("Timeout [finished]", tostring(cm))
    raises_class(TimeoutError, function()
      cm = timeout(0.001)
      local _ <close> = cm
      await(sleep(10))
    end)
    assert.are.equal("Timeout [expired]", tostring(cm))
    local _ <close> = timeout(nil)
    assert.are.equal("Timeout [active, when=nil]", tostring(timeout(nil)))
  end))

  it("test_nested_timeout_in_finally: a timeout scope inside cleanup of an expired one", in_task(function()
    local inner_timed_out = false
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0.01)
      local ok, err = pcall(await, sleep(1))
      local cleanup_err = raises(function()
        local _ <close> = timeout(0.01)
        await(sleep(10))
      end)
      inner_timed_out = TimeoutError:is(cleanup_err)
      if not ok then error(err, 0) end
    end)
    assert.is_true(inner_timed_out)
  end))

  it("test_timeout_after_cancellation: a timeout in cleanup after a caught cancellation", in_task(function()
    current_task():cancel()
    pcall(await, sleep(1))
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0)
      await(sleep(1))
    end)
    assert.are.equal(1, current_task():cancelling())
    current_task():uncancel()
  end))

  it("test_cancel_in_timeout_after_cancellation: a new cancellation is not taken for the timeout", in_task(function()
    current_task():cancel()
    pcall(await, sleep(1))
    raises_class(CancelledError, function()
      local _ <close> = timeout(1)
      current_task():cancel()
      await(sleep(2))
    end)
    assert.are.equal(2, current_task():cancelling())
    current_task():uncancel()
    current_task():uncancel()
  end))

  it("test_timeout_exception_cause: the TimeoutError carries the CancelledError as its cause", in_task(function()
    local err = raises_class(TimeoutError, function()
      local _ <close> = timeout(0)
      await(sleep(1))
    end)
    assert.is_true(CancelledError:is(err.cause))
  end))

  it("an expired scope whose body swallowed the cancellation ends without error", in_task(function()
    local cm = timeout(0.001)
    do
      local _ <close> = cm
      pcall(await, sleep(1))
    end
    assert.is_true(cm:expired())
    assert.are.equal(0, current_task():cancelling())
    await(sleep(0))
  end))

  it("the expiry cancels a task the scope's body awaits", in_task(function()
    local child = create_task(function() await(sleep(10)) end)
    raises_class(TimeoutError, function()
      local _ <close> = timeout(0.01)
      await(child)
    end)
    assert.is_true(child:cancelled())
  end))

  it("bad input: a delay that is not a number", function()
    assert.matches("timeout: delay must be a number of seconds or nil, got string \"x\"", tostring(raises(timeout, "x")))
    assert.matches("timeout_at: when must be a number", tostring(raises(timeout_at, {})))
  end)
end)

describe("with_timeout", function()
  it("returns fn's results when it finishes in time", in_task(function()
    local a, b = await(asyncio.with_timeout(1, function(x, y)
      await(sleep(0.001))
      return x + 1, y
    end, 1, "two"))
    assert.are.equal(2, a)
    assert.are.equal("two", b)
  end))

  it("raises TimeoutError when the deadline passes", in_task(function()
    local reached = false
    raises_class(TimeoutError, await, asyncio.with_timeout(0.01, function()
      await(sleep(10))
      reached = true
    end))
    assert.is_false(reached)
    assert.are.equal(0, current_task():cancelling())
  end))

  it("accepts an async function and awaits it; nil delay: no deadline", in_task(function()
    local f = async(function(v)
      await(sleep(0.001))
      return v
    end)
    assert.are.equal(7, await(asyncio.with_timeout(nil, f, 7)))
    raises_class(TimeoutError, await, asyncio.with_timeout(0, f, 7))
  end))

  it("works at top level", function()
    raises_class(TimeoutError, await, asyncio.with_timeout(0.001, function() await(sleep(1)) end))
    assert.are.equal("ok", await(asyncio.with_timeout(1, function() return "ok" end)))
  end)

  it("rejects what it cannot call", function()
    assert.matches("with_timeout: expected a function, got nil", tostring(raises(asyncio.with_timeout, 1)))
    assert.matches("with_timeout: delay must be a number", tostring(raises(asyncio.with_timeout, "1", print)))
  end)
end)

-- A script's top level has no pcall of its own: the error reaches alua's message handler,
-- which runs before the scope's __close. The scope must still see its own cancellation.
describe("a scope at a script's top level, its error uncaught", function()
  it("a timeout that fires ends the script with TimeoutError, not CancelledError", function()
    local out, status = support.run_alua([[
do
  local t <close> = asyncio.timeout(0.01)
  await asyncio.sleep(10)
end
print("not reached")
]])
    assert.are.equal(1, status)
    assert.matches("TimeoutError: timeout: the deadline passed", out, 1, true)
    assert.is_nil(out:find("CancelledError", 1, true), out)
    assert.is_nil(out:find("not reached", 1, true), out)
  end)

  it("a TaskGroup whose child fails raises an ExceptionGroup of that one failure", function()
    local out, status = support.run_alua([[
local tg <close> = asyncio.TaskGroup()
tg:create_task(function() await asyncio.sleep(0.01) error("child failed") end)
await asyncio.sleep(10)
]])
    assert.are.equal(1, status)
    assert.matches("ExceptionGroup: unhandled errors in a TaskGroup (1)", out, 1, true)
  end)

  it("a <close> handler there gets the error value as raised", function()
    local out, status = support.run_alua([[
local x <close> = setmetatable({}, { __close = function(_, e) print("close sees", type(e), e.code) end })
error({ code = 7 })
]])
    assert.are.equal(1, status)
    assert.matches("close sees\ttable\t7", out, 1, true)
    assert.matches("(error object is a table value)", out, 1, true)
  end)
end)

-- A deadline that falls due in the batch where the awaited gather's last child finished,
-- before the gather's own completion runs: the gather can no longer be cancelled (its
-- outcome is decided), so the cancel must stay with the top level and be raised when
-- that await returns, as a Task's must_cancel is (Python's Task.cancel does the same for
-- a future that refuses the cancel). It was lost: the scope let the gather's results
-- through, and worker:terminate() (the same top-level cancel) left a worker awaiting
-- gathers in a loop running for good, its parent's exit waiting on it.
describe("a top-level cancel the awaited gather can no longer take", function()
  it("is raised when the await returns: a timeout scope raises TimeoutError", function()
    local out, status = support.run_alua([[
local child = asyncio.create_task(async function() return "done" end)
local g = asyncio.gather(child)
local ok, e = pcall(function()
  local scope <close> = asyncio.timeout(0) -- due in the batch that runs child
  return await(g)
end)
print(ok, asyncio.TimeoutError:is(e), g:done() and g:result())
-- nothing is left pending for the next await
print(await(asyncio.sleep(0, "next")))
]])
    assert.are.equal(0, status, out)
    assert.matches("false\ttrue\tdone\nnext", out, 1, true)
  end)

  it("in a task as at the top level (a spec's own body runs at the top level too)", function()
    for _, in_task in ipairs({ true, false }) do
      local function body()
        local c = asyncio.create_task(async function() return "done" end)
        local g = asyncio.gather(c)
        return pcall(function()
          local scope <close> = asyncio.timeout(0)
          return await(g)
        end)
      end
      local ok, e
      if in_task then
        ok, e = await(asyncio.create_task(body))
      else
        ok, e = body()
      end
      assert.is_false(ok)
      assert.is_true(asyncio.TimeoutError:is(e), tostring(e))
    end
  end)
end)
