-- core_combinators_spec.lua — gather, wait, wait_for, as_completed, shield.
-- Mirrors CPython's test_tasks.py (GatherTests, wait/as_completed/shield tests) and
-- test_waitfor.py.

local support = require "tests.support"
local sleep, create_task, Future = asyncio.sleep, asyncio.create_task, asyncio.Future
local gather, wait, wait_for = asyncio.gather, asyncio.wait, asyncio.wait_for
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError
local pack = table.pack

local function loop() return asyncio.get_running_loop() end

-- every spec awaits or cancels what it creates: fail the one that leaves tasks running
after_each(support.expect_no_tasks_left)

local raises = support.raises

-- a task that returns v after d seconds
local function after(d, v, log)
  return create_task(function()
    await(sleep(d))
    if log then log[#log + 1] = v end
    return v
  end)
end

local function failing(d, err)
  return create_task(function() await(sleep(d)); error(err, 0) end)
end

-- runs the loop for a couple of iterations (test_utils.run_briefly)
local function run_briefly()
  await(sleep(0)); await(sleep(0)); await(sleep(0))
end

describe("gather", function()
  it("returns one value per awaitable in argument order, whatever the completion order (test_gather)", function()
    local log = {}
    -- (10 ms apart, 120 under valgrind, which on a busy machine starts tasks far apart)
    local gap = 0.01 * support.SLOWDOWN
    local r = pack(await(gather(after(3 * gap, "slow", log), after(gap, "fast", log),
      async(function() return "coro", "ignored" end)(), sleep(2 * gap, "sleep"))))
    assert.are.same({ n = 4, "slow", "fast", "coro", "sleep" }, r)
    assert.are.same({ "fast", "slow" }, log)
  end)

  -- Python's gather maps each distinct awaitable to one future (test_gather's
  -- test_duplicate_coroutines): a coroutine object given twice runs once
  it("runs an awaitable given twice once and gives its result in both places", function()
    local runs = 0
    local co = async(function(x) runs = runs + 1; await(sleep(0)); return x * 2 end)(5)
    assert.are.same({ n = 4, 10, "s", 10, 10 },
      pack(await(gather(co, sleep(0, "s"), co, co))))
    assert.are.equal(1, runs)
    local op = sleep(0, 1)
    assert.are.same({ n = 2, 1, 1 }, pack(await(gather(op, op))))
    local obj = setmetatable({}, { __await = function() runs = runs + 1; return sleep(0, "o") end })
    assert.are.same({ n = 2, "o", "o" }, pack(await(gather(obj, obj))))
    assert.are.equal(2, runs)
    -- the list form too, and a second gather of the same object still finds it used
    local again = async(function() return "a" end)()
    assert.are.same({ n = 2, "a", "a" }, pack(await(gather({ again, again }))))
    raises("already awaited", function() await(gather(again)) end)
  end)

  it("keeps nil results in place", function()
    local r = pack(await(gather(after(0, nil), after(0, 2), after(0, nil))))
    assert.are.same({ n = 3, nil, 2, nil }, r)
  end)

  -- gather.c gives children that all returned nothing an empty list of results, and
  -- future.c pushes that many nils from it
  it("children that all returned nothing give one nil each, however they ended so", function()
    local function nothing() end
    local ts = {}
    for i = 1, 50 do ts[i] = asyncio.create_task(nothing) end
    local r = pack(await(gather(table.unpack(ts))))
    assert.are.equal(50, r.n)
    assert.are.same({}, { table.unpack(r, 1, r.n) })
    -- done before the gather was made, a Future set with no value, sleep(0)'s nothing
    local done, f = asyncio.create_task(nothing), Future()
    await(done)
    local g = gather(done, f, sleep(0), asyncio.create_task(nothing))
    f:set_result()
    assert.are.equal(4, select("#", await(g)))
    assert.are.equal(4, select("#", g:result()))
    assert.is_nil((g:result()))
    -- one child with a value among them keeps its place
    local v = pack(await(gather(asyncio.create_task(nothing), after(0, "v"), asyncio.create_task(nothing))))
    assert.are.same({ n = 3, nil, "v", nil }, v)
    -- a task returning nils is not a task returning nothing, but awaits the same
    local two = asyncio.create_task(function() return nil, nil end)
    assert.are.equal(2, select("#", await(two)))
    assert.are.same({ n = 2 }, pack(await(gather(two, asyncio.create_task(nothing)))))
    assert.are.equal(1, select("#", await(gather(asyncio.create_task(nothing)))))
  end)

  it("once done keeps its results, not its children", function()
    -- the list of children becomes the list of results: a done gather held on to does
    -- not keep the tasks it gathered alive
    local weak = setmetatable({}, { __mode = "k" })
    local a, b = asyncio.create_task(function() return "a" end), asyncio.Future()
    weak[a], weak[b] = true, true
    b:set_result(nil)
    local g = gather(a, b)
    assert.are.same({ n = 2, "a", nil }, pack(await(g)))
    a, b = nil, nil
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak), "the done gather kept a child alive")
    assert.are.same({ n = 2, "a", nil }, pack(await(g)))
    assert.are.same({ n = 2, "a", nil }, pack(g:result()))
  end)

  it("of nothing returns nothing at once (test_constructor_empty_sequence)", function()
    local g = gather()
    assert.is_true(g:done())
    assert.are.equal(0, select("#", await(g)))
  end)

  it("of Futures completes when they all have results (test_result)", function()
    local a, b = Future(), Future()
    local g = gather(a, b)
    run_briefly()
    assert.is_false(g:done())
    b:set_result(2)
    a:set_result(1, "extra")
    assert.are.same({ n = 2, 1, 2 }, pack(await(g)))
  end)

  it("raises the first error; the other children keep running (test_one_exception)", function()
    local a, b, c = Future(), Future(), Future()
    local g = gather(a, b, c)
    local calls = 0
    g:add_done_callback(function() calls = calls + 1 end)
    local exc = { "ZeroDivisionError" }
    a:set_result(1)
    b:set_exception(exc)
    run_briefly()
    assert.is_true(g:done())
    assert.are.equal(1, calls)
    assert.are.equal(exc, g:exception())
    assert.is_false(c:done(), "gather must not cancel the other children")
    c:set_result(3) -- does nothing to the gather
    run_briefly()
    assert.are.equal(exc, raises(await, g))
  end)

  it("raises the error of the child that failed, wherever it is among many", function()
    local fs = {}
    for i = 1, 1000 do fs[i] = Future() end
    local g = gather(table.unpack(fs))
    for i = 1, 776 do fs[i]:set_result(i) end
    fs[777]:set_exception("child 777 failed")
    for i = 778, 1000 do fs[i]:set_result(i) end
    local ok, err = pcall(await, g)
    assert.is_false(ok)
    assert.are.equal("child 777 failed", err)
    fs = {}
    for i = 1, 1000 do fs[i] = Future() end
    g = gather(table.unpack(fs))
    for i = 1000, 1, -1 do fs[i]:set_result(i) end -- the last child completes it
    local r = pack(await(g))
    assert.are.equal(1000, r.n)
    assert.are.equal(1, r[1]); assert.are.equal(1000, r[1000])
  end)

  it("a failing task's error reaches the awaiter unchanged while siblings finish", function()
    local log = {}
    local e = { "boom" }
    -- the sibling waits on a Future, not a 20 ms sleep: under valgrind on a busy machine
    -- the sleep ran out before the gather had passed the error on, and slow was done
    local go = Future()
    local slow = create_task(function()
      await(go)
      log[#log + 1] = "slow"
    end)
    assert.are.equal(e, raises(await, gather(failing(0, e), slow)))
    assert.is_false(slow:done())
    go:set_result(true)
    await(slow)
    assert.are.same({ "slow" }, log)
  end)

  it("return_exceptions puts errors in the results (test_return_exceptions)", function()
    local a, b, c, d = Future(), Future(), Future(), Future()
    local g = gather(a, b, c, d, { return_exceptions = true })
    local exc, exc2 = { "exc" }, { "exc2" }
    b:set_result(1)
    c:set_exception(exc)
    a:set_result(3)
    run_briefly()
    assert.is_false(g:done())
    d:set_exception(exc2)
    local r = pack(await(g))
    assert.are.same({ 4, 3, 1 }, { r.n, r[1], r[2] })
    -- user errors come wrapped, so that is_error tells them from results
    assert.is_true(asyncio.is_error(r[3]) and asyncio.is_error(r[4]))
    assert.are.equal(exc, r[3].error)
    assert.are.equal(exc2, r[4].error)
    assert.are.equal(exc, select(3, g:result()).error)
  end)

  it("a cancelled child makes the gather raise CancelledError (test_one_cancellation)", function()
    local a, b, c = Future(), Future(), Future()
    local g = gather(a, b, c)
    a:set_result(1)
    b:cancel()
    run_briefly()
    assert.is_true(g:done())
    assert.is_true(CancelledError:is(raises(await, g)))
    c:set_result(3)
  end)

  it("with return_exceptions a cancelled child gives a CancelledError value (test_result_exception_one_cancellation)", function()
    local a, b, c = Future(), Future(), Future()
    local g = gather(a, b, c, { return_exceptions = true })
    a:set_result(1)
    b:cancel()
    c:set_exception("zde")
    local r = pack(await(g))
    assert.are.equal(1, r[1])
    assert.is_true(CancelledError:is(r[2]) and asyncio.is_error(r[2]))
    assert.are.equal("zde", r[3].error)
    assert.are.equal("zde", tostring(r[3]))
  end)

  it("cancelling the task awaiting a gather cancels every child, and waits for them (test_cancellation_broadcast)", function()
    local proof = 0
    local waiter = Future()
    local function inner() await(waiter); proof = proof + 1 end
    local child1, child2 = create_task(inner), create_task(inner)
    local gatherer
    local f = create_task(function()
      gatherer = gather(child1, child2)
      await(gatherer)
      proof = proof + 100
    end)
    run_briefly()
    assert.is_true(f:cancel())
    assert.is_true(CancelledError:is(raises(await, f)))
    assert.is_false(gatherer:cancel())
    assert.is_true(waiter:cancelled())
    assert.is_true(child1:cancelled())
    assert.is_true(child2:cancelled())
    run_briefly()
    assert.are.equal(0, proof)
  end)

  it("the awaiter resumes only after the children's cleanup ran", function()
    local log = {}
    local function child(name)
      local _ <close> = setmetatable({}, { __close = function()
        await(sleep(0.01))
        log[#log + 1] = name .. " cleaned"
      end })
      await(sleep(10))
    end
    local t = create_task(function()
      local ok, e = pcall(await, gather(create_task(child, "a"), create_task(child, "b")))
      log[#log + 1] = "awaiter resumed"
      error(e, 0)
    end)
    run_briefly()
    t:cancel()
    assert.is_true(CancelledError:is(raises(await, t)))
    assert.are.same({ "a cleaned", "b cleaned", "awaiter resumed" }, log)
  end)

  it("cancel(msg) of the awaiting task reaches it through the gather (test_cancel_gather_2)", function()
    local t = create_task(function()
      while true do await(gather(sleep(0.005), { return_exceptions = true })) end
    end)
    await(sleep(0.02))
    t:cancel("my message")
    local e = raises(await, t)
    assert.is_true(CancelledError:is(e))
    assert.are.equal("my message", e.message)
    assert.is_true(t:cancelled())
  end)

  it("cancelling a gather whose children are all done returns false and keeps the result (test_cancel_gather_1)", function()
    local fut = Future()
    local child = create_task(function() return await(fut) end)
    local g = gather(child)
    local cancel_result
    fut:add_done_callback(function() cancel_result = g:cancel() end)
    fut:set_result(42)
    assert.are.equal(42, await(g))
    assert.is_false(cancel_result)
    assert.is_false(g:cancelled())
  end)

  it("cancelling the gather itself cancels the children", function()
    local a, b = after(10, "a"), after(10, "b")
    local g = gather(a, b)
    run_briefly()
    assert.is_true(g:cancel())
    assert.is_true(CancelledError:is(raises(await, g)))
    assert.is_true(a:cancelled())
    assert.is_true(b:cancelled())
  end)

  it("only a plain table without metatable is taken as options", function()
    local f = Future()
    f:set_result("f")
    assert.are.same({ n = 1, "f" }, pack(await(gather(f, {}))))
    assert.matches("got table", tostring(raises(gather, setmetatable({}, {}))))
  end)

  it("rejects a non-awaitable, naming its type", function()
    assert.matches("got number", tostring(raises(gather, 1)))
  end)
end)

describe("wait", function()
  it("ALL_COMPLETED by default: every awaitable done, nothing pending (test_wait)", function()
    local a, b = after(0.01, "a"), after(0.03, "b")
    local t0 = loop():time()
    local done, pending = await(wait({ b, a }))
    assert.are.same({ b, a }, done)
    assert.are.same({}, pending)
    assert.is_true(loop():time() - t0 >= 0.029)
  end)

  it("does not raise the children's errors (test_wait_with_exception)", function()
    local a, b = failing(0, "bad"), after(0.01, "b")
    local done, pending = await(wait({ a, b }))
    assert.are.equal(2, #done)
    assert.are.equal(0, #pending)
    assert.are.equal("bad", a:exception())
  end)

  it("FIRST_COMPLETED returns when one is done (test_wait_first_completed)", function()
    local a, b = after(10, "a"), after(0.01, "b")
    local done, pending = await(wait({ a, b }, { return_when = asyncio.FIRST_COMPLETED }))
    assert.are.same({ b }, done)
    assert.are.same({ a }, pending)
    a:cancel()
  end)

  it("FIRST_COMPLETED with several done together returns them all (test_wait_really_done)", function()
    local a, b = after(0, "a"), after(0, "b")
    local done, pending = await(wait({ a, b }, { return_when = asyncio.FIRST_COMPLETED }))
    assert.are.equal(2, #done)
    assert.are.equal(0, #pending)
  end)

  it("FIRST_COMPLETED with one already done returns at once", function()
    local f = Future()
    f:set_result()
    local slow = after(10, "slow")
    local done, pending = await(wait({ slow, f }, { return_when = asyncio.FIRST_COMPLETED }))
    assert.are.same({ f }, done)
    assert.are.same({ slow }, pending)
    slow:cancel()
  end)

  it("FIRST_EXCEPTION returns at the first error (test_wait_first_exception_in_wait)", function()
    local a, b = after(10, "a"), failing(0.01, "x")
    local done, pending = await(wait({ a, b }, { return_when = asyncio.FIRST_EXCEPTION }))
    assert.are.same({ b }, done)
    assert.are.same({ a }, pending)
    assert.are.equal("x", b:exception())
    a:cancel()
  end)

  it("FIRST_EXCEPTION with no error waits for all; a cancellation is not an error", function()
    local a, b = after(0.01, "a"), after(0.02, "b")
    local c = after(10, "c")
    c:cancel()
    local done, pending = await(wait({ a, b, c }, { return_when = "FIRST_EXCEPTION" }))
    assert.are.equal(3, #done)
    assert.are.equal(0, #pending)
  end)

  it("timeout returns what is done; the pending are not cancelled (test_wait_with_timeout)", function()
    -- returned at the timeout: not before it, and well before b would have ended (the
    -- bound was 0.15 s for a 0.05 s timeout, which a machine at load 12 overran)
    local S = support.SLOWDOWN
    local a, b = after(0.01 * S, "a"), after(0.6 * S, "b")
    local t0 = loop():time()
    local done, pending = await(wait({ b, a }, { timeout = 0.1 * S }))
    local elapsed = loop():time() - t0
    assert.are.same({ a }, done)
    assert.are.same({ b }, pending)
    assert.is_true(elapsed >= 0.099 * S and elapsed < 0.6 * S, "waited " .. elapsed)
    assert.is_false(b:cancelled())
    assert.are.equal("b", await(b))
  end)

  it("timeout that is not reached changes nothing", function()
    local done, pending = await(wait({ after(0.01, 1) }, { timeout = 5 }))
    assert.are.equal(1, #done)
    assert.are.equal(0, #pending)
  end)

  it("wraps coroutine objects in tasks", function()
    local done = await(wait({ async(function() return "c" end)() }))
    assert.are.equal("c", done[1]:result())
  end)

  it("cancelling the waiting task leaves the awaitables running", function()
    -- a waits on a Future, not a 50 ms sleep: on a machine at load 12 the sleep ran out
    -- before the cancellation arrived, and wait returned
    local go = Future()
    local a = create_task(function() await(go) return "a" end)
    local t = create_task(function() return await(wait({ a })) end)
    run_briefly()
    t:cancel()
    assert.is_true(CancelledError:is(raises(await, t)))
    assert.is_false(a:cancelled())
    go:set_result(true)
    assert.are.equal("a", await(a))
  end)

  it("rejects an empty list, a bad return_when and a bad timeout (test_wait_errors)", function()
    assert.matches("empty", tostring(raises(wait, {})))
    assert.matches("expected a list of awaitables, got number", tostring(raises(wait, 5)))
    local f = Future()
    assert.matches("invalid return_when", tostring(raises(wait, { f }, { return_when = "SOMETIMES" })))
    assert.matches("timeout", tostring(raises(wait, { f }, { timeout = "soon" })))
    assert.matches("timeout", tostring(raises(wait, { f }, { timeout = 0 / 0 })))
    f:cancel()
  end)
end)

describe("wait_for", function()
  it("returns all the results when in time (test_wait_for_race_condition)", function()
    local fut = Future()
    loop():call_later(0.01, function() fut:set_result("ok", 2) end)
    assert.are.same({ n = 2, "ok", 2 }, pack(await(wait_for(fut, 1))))
  end)

  it("timeout nil waits as long as needed (test_wait_for_blocking)", function()
    assert.are.equal("done", await(wait_for(async(function() return "done" end)(), nil)))
  end)

  it("raises TimeoutError and cancels the awaitable (test_wait_for)", function()
    local running
    local fut = create_task(function()
      running = true
      local _ <close> = setmetatable({}, { __close = function() running = false end })
      await(sleep(10))
      return "done"
    end)
    local t0 = loop():time()
    local e = raises(await, wait_for(fut, 0.05))
    local elapsed = loop():time() - t0
    assert.is_true(TimeoutError:is(e))
    assert.are.equal("TimeoutError", e.type)
    assert.is_true(fut:done())
    assert.is_true(fut:cancelled())
    assert.is_false(running)
    -- at the timeout, far from the 10 s the task would take (0.5 s was a timed bound that
    -- a busy machine under valgrind could overrun)
    assert.is_true(elapsed >= 0.049 and elapsed < 1 * support.SLOWDOWN, "took " .. elapsed)
  end)

  it("waits for the cancelled awaitable to finish before raising (test_wait_for_waits_for_task_cancellation)", function()
    local task_done = false
    local inner = create_task(function()
      local ok, e = pcall(await, sleep(10))
      if not ok then await(sleep(0.01)) end
      task_done = true
      error(e, 0)
    end)
    assert.is_true(TimeoutError:is(raises(await, wait_for(inner, 0.001))))
    assert.is_true(task_done)
  end)

  it("returns the result of an awaitable that swallows the timeout's cancellation (test_wait_for_cancellation_race_condition)", function()
    local function inner()
      local ok = pcall(await, sleep(1))
      assert(not ok)
      return 1
    end
    assert.are.equal(1, await(wait_for(create_task(inner), 0.01)))
  end)

  it("raises the error the awaitable raises while cancelled (test_wait_for_reraises_exception_during_cancellation)", function()
    local foo = { "FooException" }
    local inner = create_task(function()
      local _ <close> = setmetatable({}, { __close = function() error(foo) end })
      await(sleep(0.2))
    end)
    assert.are.equal(foo, raises(await, wait_for(inner, 0.001)))
  end)

  it("timeout <= 0 with a done future returns its result (test_wait_for_timeout_less_then_0_or_0_future_done)", function()
    local fut = Future()
    fut:set_result("done")
    assert.are.equal("done", await(wait_for(fut, 0)))
  end)

  it("timeout <= 0 never starts a coroutine (test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started)", function()
    local started = false
    local foo = async(function() started = true end)
    assert.is_true(TimeoutError:is(raises(await, wait_for(foo(), 0))))
    assert.is_false(started)
  end)

  it("timeout <= 0 cancels a running task (test_wait_for_timeout_less_then_0_or_0)", function()
    for _, timeout in ipairs { 0, -1 } do
      local running
      local started = Future()
      local fut = create_task(function()
        running = true
        started:set_result()
        local _ <close> = setmetatable({}, { __close = function() running = false end })
        await(sleep(10))
      end)
      await(started)
      local t0 = loop():time()
      assert.is_true(TimeoutError:is(raises(await, wait_for(fut, timeout))))
      assert.is_true(fut:cancelled())
      assert.is_false(running)
      -- (not the task's 10 s; 0.1 s was a speed bound a busy machine could overrun)
      assert.is_true(loop():time() - t0 < 1 * support.SLOWDOWN)
    end
  end)

  it("cancelling the waiting task cancels the awaitable (test_cancel_wait_for, test_cancel_blocking_wait_for)", function()
    for _, timeout in ipairs { 60, false } do
      local task = create_task(function() await(Future()) end)
      local w = create_task(function() return await(wait_for(task, timeout or nil)) end)
      loop():call_soon(function() w:cancel() end)
      local e = raises(await, w)
      assert.is_true(CancelledError:is(e), tostring(e))
      assert.is_true(task:cancelled())
      assert.is_true(w:cancelled())
    end
  end)

  it("times out with TimeoutError in a task that survived an earlier cancellation", function()
    local t = create_task(function()
      assert(not pcall(await, sleep(10)))
      return select(2, pcall(await, wait_for(sleep(10), 0.01)))
    end)
    run_briefly()
    t:cancel()
    local e = await(t)
    assert.is_true(TimeoutError:is(e), tostring(e))
  end)

  it("times out with TimeoutError on a gather (its cancel ends it failed with CancelledError)", function()
    for _, timeout in ipairs { 0.005, 0 } do
      local g = gather(sleep(10), create_task(function() await(Future()) end))
      local e = raises(await, wait_for(g, timeout))
      assert.is_true(TimeoutError:is(e), tostring(e))
      assert.is_true(g:done())
    end
  end)

  it("an error of the awaitable passes through unchanged", function()
    local e = {}
    assert.are.equal(e, raises(await, wait_for(failing(0, e), 1)))
  end)

  it("rejects a bad timeout", function()
    local f = Future()
    assert.matches("timeout must be a number", tostring(raises(wait_for, f, "1")))
    assert.matches("timeout must be a number", tostring(raises(wait_for, f, 0 / 0)))
    f:cancel()
  end)
end)

describe("as_completed", function()
  it("yields awaitables in completion order (test_as_completed)", function()
    local values = {}
    -- 50 ms apart (600 ms under valgrind): the tasks' sleeps start at their first step,
    -- which a loaded machine can delay past a 10 ms gap while the sleep Future's has
    -- started, and valgrind on a busy machine past 50 ms
    local gap = 0.05 * support.SLOWDOWN
    for f in asyncio.as_completed({ after(3 * gap, "c"), after(gap, "a"), sleep(2 * gap, "b") }) do
      values[#values + 1] = await(f)
    end
    assert.are.same({ "a", "b", "c" }, values)
  end)

  it("raises each awaitable's error when its turn comes", function()
    local got = {}
    local gap = 0.05 * support.SLOWDOWN -- (10 ms was too close under valgrind)
    for f in asyncio.as_completed({ failing(2 * gap, "late error"), after(gap, "ok") }) do
      local ok, v = pcall(await, f)
      got[#got + 1] = { ok, v }
    end
    assert.are.same({ { true, "ok" }, { false, "late error" } }, got)
  end)

  it("with a timeout, raises TimeoutError for the ones not done (test_as_completed_with_timeout)", function()
    local slow = after(10, "b")
    local values = {}
    -- (a has 0.2 s to finish, 2.4 under valgrind: 40 ms was too little on a busy machine)
    for f in asyncio.as_completed({ after(0.01, "a"), slow }, { timeout = 0.2 * support.SLOWDOWN }) do
      local ok, v = pcall(await, f)
      values[#values + 1] = ok and { 1, v } or { 2, TimeoutError:is(v) }
    end
    assert.are.same({ { 1, "a" }, { 2, true } }, values)
    assert.is_false(slow:cancelled())
    slow:cancel()
  end)

  it("with an unused timeout behaves as without (test_as_completed_with_unused_timeout)", function()
    local values = {}
    for f in asyncio.as_completed({ after(0.01, "a") }, { timeout = 5 }) do
      values[#values + 1] = await(f)
    end
    assert.are.same({ "a" }, values)
  end)

  it("of an empty list yields nothing", function()
    local n = 0
    for _ in asyncio.as_completed({}) do n = n + 1 end
    assert.are.equal(0, n)
  end)

  it("rejects a non-list (test_as_completed_invalid_args)", function()
    assert.matches("expected a list of awaitables, got userdata",
      tostring(raises(asyncio.as_completed, Future())))
  end)
end)

describe("shield", function()
  it("passes the inner result (test_shield_result)", function()
    local inner = Future()
    local outer = asyncio.shield(inner)
    inner:set_result(42, 43)
    assert.are.same({ n = 2, 42, 43 }, pack(await(outer)))
  end)

  it("passes the inner error (test_shield_exception)", function()
    local inner = Future()
    local outer = asyncio.shield(inner)
    local e = {}
    inner:set_exception(e)
    assert.are.equal(e, raises(await, outer))
  end)

  it("cancelling the inner cancels the outer (test_shield_cancel_inner)", function()
    local inner = Future()
    local outer = asyncio.shield(inner)
    inner:cancel()
    run_briefly()
    assert.is_true(outer:cancelled())
  end)

  it("cancelling the outer leaves the inner alone (test_shield_cancel_outer)", function()
    local inner = Future()
    local outer = asyncio.shield(inner)
    run_briefly()
    outer:cancel()
    run_briefly()
    assert.is_true(outer:cancelled())
    assert.is_false(inner:cancelled())
    inner:set_result(1)
    run_briefly()
  end)

  it("cancelling the awaiting task does not affect the shielded one (test_shield_effect)", function()
    local proof = 0
    local waiter = Future()
    local f = create_task(function()
      await(asyncio.shield(async(function()
        await(waiter)
        proof = proof + 1
      end)()))
      proof = proof + 100
    end)
    run_briefly()
    f:cancel()
    assert.is_true(CancelledError:is(raises(await, f)))
    waiter:set_result()
    run_briefly()
    assert.are.equal(1, proof)
  end)

  it("of a gather, cancelling the outer does not cancel the gather (test_shield_gather)", function()
    local child1, child2 = Future(), Future()
    local parent = gather(child1, child2)
    local outer = asyncio.shield(parent)
    run_briefly()
    outer:cancel()
    run_briefly()
    assert.is_true(outer:cancelled())
    child1:set_result(1)
    child2:set_result(2)
    assert.are.same({ n = 2, 1, 2 }, pack(await(parent)))
  end)

  it("gather of shields: cancelling the gather cancels the shields, not the children (test_gather_shield)", function()
    local child1, child2 = Future(), Future()
    local inner1, inner2 = asyncio.shield(child1), asyncio.shield(child2)
    local parent = gather(inner1, inner2)
    run_briefly()
    parent:cancel()
    run_briefly()
    assert.is_true(CancelledError:is(raises(await, parent)))
    assert.is_true(inner1:cancelled())
    assert.is_true(inner2:cancelled())
    assert.is_false(child1:cancelled())
    child1:set_result(1)
    child2:set_result(2)
    run_briefly()
  end)

  it("of a done awaitable returns it", function()
    local f = Future()
    f:set_result(1)
    assert.are.equal(f, asyncio.shield(f))
  end)

  it("of a coroutine object runs it as a task", function()
    assert.are.equal("c", await(asyncio.shield(async(function() return "c" end)())))
  end)
end)
