-- core_await_spec.lua — async/await, coroutine objects, await through pcall, metamethods,
-- iterators and user coroutines, the places await cannot suspend, top-level await.
-- Mirrors CPython's test_coroutines-style checks in test_tasks.py where they apply.

local support = require "tests.support"
local sleep, create_task, Future = asyncio.sleep, asyncio.create_task, asyncio.Future
local pack = table.pack

-- every spec awaits or cancels what it creates: fail the one that leaves tasks running
after_each(support.expect_no_tasks_left)

local raises = support.raises

local run_alua = support.run_alua

-- runs fn as a task and returns the error it raises
local function task_error(fn)
  return raises(await, create_task(fn))
end

-- calls fn once from a table.sort comparator, where nothing can yield; returns its result
local function in_comparator(fn)
  local got
  table.sort({ 2, 1 }, function(a, b)
    got = got or fn()
    return a < b
  end)
  return got
end

describe("async functions and coroutine objects", function()
  it("calling an async function returns a coroutine object that has not started", function()
    local ran = false
    local f = async(function() ran = true end)
    assert.is_true(asyncio.iscoroutinefunction(f))
    assert.is_false(asyncio.iscoroutinefunction(print))
    local c = f()
    assert.is_true(asyncio.iscoroutine(c))
    assert.is_false(asyncio.iscoroutine(f))
    assert.is_false(ran)
    await(sleep(0))
    assert.is_false(ran, "a coroutine object must not run by itself")
    await(c)
    assert.is_true(ran)
  end)

  it("passes the call's arguments to the body, nils included", function()
    local f = async(function(...) return pack(...) end)
    assert.are.same({ n = 3, 1, nil, 3 }, await(f(1, nil, 3)))
  end)

  -- a coroutine object keeps its arguments as user values, of which Lua allows fewer than
  -- 65,535: past that the count wrapped (66,000 arguments arrived as 464, 65,534 lost
  -- the body itself)
  it("refuses more arguments than a coroutine object can hold, with a clear error", function()
    local many = {}
    for i = 1, 66000 do many[i] = i end
    local f = async(function(...) return select("#", ...), (select(65532, ...)) end)
    local n, at = await(f(table.unpack(many, 1, 65532)))
    assert.are.equal(65532, n)
    assert.are.equal(65532, at)
    for _, count in ipairs({ 65533, 65534, 66000 }) do
      local err = raises(f, table.unpack(many, 1, count))
      assert.matches("too many arguments %(" .. count .. "; at most 65532%)", tostring(err))
    end
    assert.matches("sleep: too many results %(65532; at most 65531%)",
      tostring(raises(sleep, 1, table.unpack(many, 1, 65532))))
  end)

  it("await returns all the results, nils included", function()
    local f = async(function() return nil, "b", nil end)
    assert.are.same({ n = 3, nil, "b", nil }, pack(await(f())))
    assert.are.equal(0, select("#", await(async(function() end)())))
  end)

  it("awaiting a coroutine object inside a task runs it inline, in the same task", function()
    local inner = async(function() return asyncio.current_task() end)
    local t
    t = create_task(function()
      local n = #asyncio.all_tasks()
      local who = await(inner())
      return who, n, #asyncio.all_tasks()
    end)
    local who, before, after = await(t)
    assert.are.equal(t, who)
    assert.are.equal(before, after)
  end)

  it("awaiting a coroutine object twice is an error that names it", function()
    local c = async(function() end, "twice")()
    await(c)
    assert.matches("coroutine 'twice' was already awaited", tostring(raises(await, c)))
    local d = async(function() end)()
    local err = task_error(function() await(d); await(d) end)
    assert.matches("already awaited", tostring(err))
  end)

  it("'already awaited' raised where only asyncio's frames run names the user's line", function()
    -- the top-level await's main task runs wait_for (stdlib) alone: the line is the
    -- await's; the name pushed for the message once leaked in as its prefix ("fensure_future")
    local out = run_alua([[
      local f = async(function() end, "f")
      local c = f()
      await(c)
      local ok, err = pcall(function() await(asyncio.wait_for(c, 1)) end)
      print(err)
    ]])
    assert.matches("^[^\n]*:4: wait_for: coroutine 'f' was already awaited", out)
  end)

  it("an error in the body reaches the awaiter unchanged", function()
    local e = {}
    local f = async(function() error(e) end)
    assert.are.equal(e, raises(await, f()))
    assert.are.equal(e, task_error(function() await(f()) end))
  end)

  it("a coroutine object never awaited is reported on stderr when collected, its body never run", function()
    local out, status = run_alua([[
      local c = async(function() print("body ran") end, "forgotten")()
      c = nil
      collectgarbage(); collectgarbage()
      print("collected")
      await(async(function() end, "awaited")())
      asyncio.create_task(async(function() end, "wrapped")())
    ]])
    assert.are.equal(0, status)
    assert.matches("coroutine 'forgotten' was never awaited %(created at [^)]*:1%)\ncollected\n", out)
    assert.not_matches("body ran", out)
    assert.not_matches("'awaited'", out)
    assert.not_matches("'wrapped'", out)
  end)

  -- a coroutine object is registered for finalization only if it outlives a collection
  -- untaken (coro.c): each path of that scheme reports exactly the forgotten ones
  it("a coroutine object kept over collections, then dropped untaken, is reported once collected", function()
    local out, status = run_alua([[
      local kept = async(function() end, "kept")()
      local taken_late = async(function() end, "taken late")()
      collectgarbage(); collectgarbage()
      collectgarbage(); collectgarbage()
      print("still held")
      kept = nil
      await(taken_late)
      collectgarbage(); collectgarbage()
      print("dropped")
    ]])
    assert.are.equal(0, status)
    assert.matches("^still held\nRuntimeWarning: coroutine 'kept' was never awaited %(created at [^)]*:1%)\ndropped\n", out)
    assert.not_matches("taken late", out)
  end)

  it("many coroutine objects made, collected, then wrapped: only the one left over is reported", function()
    local out, status = run_alua([[
      local list = {}
      for i = 1, 5000 do list[i] = async(function() end, i == 5000 and "left" or "wrapped")() end
      collectgarbage(); collectgarbage()
      for i = 1, 4999 do asyncio.create_task(list[i]) end
      await(asyncio.sleep(0))
      list = nil
      collectgarbage(); collectgarbage()
      print("end")
    ]])
    assert.are.equal(0, status)
    assert.matches("^RuntimeWarning: coroutine 'left' was never awaited [^\n]*\nend\n$", out)
  end)

  -- the object made last waits in a slot of its own, the others in the nursery's list:
  -- taken, either lets go of its arguments at once
  it("a taken coroutine object keeps nothing alive, whether it was the last made or an older one", function()
    local weak = setmetatable({}, { __mode = "k" })
    local body = async(function(x) return x end)
    local a, b = {}, {}
    weak[a], weak[b] = "a", "b"
    local ca = body(a)
    local cb = body(b) -- moves ca from the slot into the nursery's list
    assert.are.equal(b, await(cb))
    assert.are.equal(a, await(asyncio.create_task(ca)))
    a, b, ca, cb = nil, nil, nil, nil
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("a coroutine object still held untaken at exit is reported at exit, whether or not a collection saw it", function()
    local out, status = run_alua([[
      local old = async(function() end, "old")()
      collectgarbage(); collectgarbage()
      local new = async(function() end, "new")()
      print("end")
    ]])
    assert.are.equal(0, status)
    assert.matches("^end\n", out)
    assert.matches("coroutine 'old' was never awaited", out)
    assert.matches("coroutine 'new' was never awaited", out)
  end)

  it("async(fn, name) names the coroutine; the default name says where fn is", function()
    local c = async(function() end, "main")()
    assert.matches("<coroutine 'main'>", tostring(c))
    await(c)
    assert.matches("taken", tostring(c))
    local d = async(function() end)()
    assert.matches("function <.-core_await_spec.lua:%d+>", tostring(d))
    await(d)
  end)

  it("async of an async function returns it; of a non-function is an error", function()
    local f = async(function() end)
    assert.are.equal(f, async(f))
    assert.matches("async: expected a function, got number", tostring(raises(async, 1)))
    assert.matches("got nil", tostring(raises(async, nil)))
  end)

  it("async accepts a callable table", function()
    local obj = setmetatable({}, { __call = function(_, x) return x + 1 end })
    assert.are.equal(2, await(async(obj)(1)))
  end)
end)

describe("await", function()
  it("names the type of a non-awaitable", function()
    for _, v in ipairs { 42, "str", true, {} } do
      assert.matches("await: expected a coroutine object, Task or Future, got " .. type(v),
        tostring(raises(await, v)))
      assert.matches("got " .. type(v), tostring(task_error(function() await(v) end)))
    end
    assert.matches("got nil", tostring(raises(await, nil)))
    assert.matches("got function", tostring(task_error(function() await(print) end)))
    assert.matches("got userdata", tostring(raises(await, io.stdout)))
  end)

  it("the body of a Task made from an awaitable, called as await(await, sleep), gives nil", function()
    -- task_awaiting's closure of await (a Task's body for a Future or an __await object)
    -- had fewer upvalues than asyncio.await's, and the raw read of await(await, sleep)'s
    -- answer (4205a7d) went past its end: a value of whatever memory followed, or SIGSEGV
    local ok, got = false, "not called"
    local obj = setmetatable({}, { __await = function()
      local body = debug.getinfo(2, "f").func
      ok, got = pcall(body, asyncio.await, asyncio.sleep)
      return asyncio.sleep(0)
    end })
    await(asyncio.create_task(obj))
    assert.is_true(ok, tostring(got))
    assert.is_nil(got)
  end)

  it("of a done future inside a task does not suspend", function()
    local f = Future()
    f:set_result("now")
    local log = {}
    local a = create_task(function() log[#log + 1] = await(f); log[#log + 1] = "a" end)
    local b = create_task(function() log[#log + 1] = "b" end)
    await(a); await(b)
    assert.are.same({ "now", "a", "b" }, log)
  end)

  it("works inside pcall and xpcall", function()
    local r = await(create_task(function()
      local ok1, v1 = pcall(await, sleep(0, "p"))
      local ok2, v2 = xpcall(function() return await(sleep(0.001, "x")) end, debug.traceback)
      local ok3, e3 = pcall(function() await(sleep(0)); error("after await", 0) end)
      return { ok1, v1, ok2, v2, ok3, e3 }
    end))
    assert.are.same({ true, "p", true, "x", false, "after await" }, r)
  end)

  it("xpcall's handler sees errors raised after an await", function()
    local seen = await(create_task(function()
      local _, h = xpcall(function() await(sleep(0)); error({ tag = 1 }) end,
        function(e) return "handled " .. e.tag end)
      return h
    end))
    assert.are.equal("handled 1", seen)
  end)

  it("works inside metamethods", function()
    local mt = {
      __index = function(_, k) return await(sleep(0, "idx:" .. k)) end,
      __add = function(a, b) return await(sleep(0.001, a.v + b.v)) end,
      __call = function(self, x) return await(sleep(0, x * 2)) end,
      __eq = function() return await(sleep(0, true)) end,
      __lt = function() return await(sleep(0, true)) end,
      __concat = function() return await(sleep(0, "cat")) end,
      __len = function() return await(sleep(0, 7)) end,
    }
    local r = await(create_task(function()
      local a, b = setmetatable({ v = 1 }, mt), setmetatable({ v = 2 }, mt)
      return { a.foo, a + b, a(21), a == b, a < b, a .. b, #a }
    end))
    assert.are.same({ "idx:foo", 3, 42, true, true, "cat", 7 }, r)
  end)

  it("works inside a generic for iterator", function()
    local function ticks(n)
      local i = 0
      return function()
        i = i + 1
        if i <= n then return await(sleep(0, i)) end
      end
    end
    local got = await(create_task(function()
      local out = {}
      for v in ticks(3) do out[#out + 1] = v end
      return out
    end))
    assert.are.same({ 1, 2, 3 }, got)
  end)

  it("passes through coroutine.wrap generators running inside a task", function()
    local function gen(n)
      return coroutine.wrap(function()
        for i = 1, n do
          local v = await(sleep(0.001, i * 10))
          coroutine.yield(v)
        end
      end)
    end
    local got = await(create_task(function()
      local out = {}
      for v in gen(3) do out[#out + 1] = v end
      return out
    end))
    assert.are.same({ 10, 20, 30 }, got)
  end)

  it("passes through coroutine.resume, and plain yields still reach resume", function()
    local got = await(create_task(function()
      local co = coroutine.create(function(a)
        local b = coroutine.yield(a + 1)
        await(sleep(0))
        local c = coroutine.yield(b + await(sleep(0, 100)))
        return "end", c
      end)
      local out = {}
      out[1] = { coroutine.resume(co, 1) }
      out[2] = { coroutine.resume(co, 2) }
      out[3] = { coroutine.resume(co, 3) }
      out[4] = { coroutine.resume(co) }
      out[5] = coroutine.status(co)
      return out
    end))
    assert.are.same({ { true, 2 }, { true, 102 }, { true, "end", 3 },
      { false, "cannot resume dead coroutine" }, "dead" }, got)
  end)

  it("coroutine.resume keeps the stock results for dead and running coroutines", function()
    local function check()
      local dead = coroutine.create(function() error("died", 0) end)
      local r1 = { coroutine.resume(dead) }
      local r2 = { coroutine.resume(dead) }
      local self_r
      local co = coroutine.create(function() self_r = { coroutine.resume(coroutine.running()) } end)
      coroutine.resume(co)
      local w = coroutine.wrap(function() end)
      w()
      local ok, e = pcall(w)
      return { r1, r2, self_r, ok, e }
    end
    local expected = { { false, "died" }, { false, "cannot resume dead coroutine" },
      { false, "cannot resume non-suspended coroutine" }, false, "cannot resume dead coroutine" }
    local outside = check()
    assert.matches("cannot resume dead coroutine$", outside[5])
    outside[5] = outside[5]:match("cannot resume dead coroutine")
    assert.are.same(expected, outside)
    local inside = await(create_task(check))
    inside[5] = inside[5]:match("cannot resume dead coroutine")
    assert.are.same(expected, inside)
  end)

  it("lets tasks run while a generator inside another task waits", function()
    local log = {}
    local a = create_task(function()
      local g = coroutine.wrap(function()
        await(sleep(0.02))
        coroutine.yield("g")
      end)
      local v = g()
      log[#log + 1] = v
    end)
    local b = create_task(function() log[#log + 1] = "b" end)
    await(a); await(b)
    assert.are.same({ "b", "g" }, log)
  end)

  it("an error after an await inside a wrap generator reaches its caller", function()
    local err = task_error(function()
      local g = coroutine.wrap(function() await(sleep(0)); error({ "gen" }) end)
      g()
    end)
    assert.are.same({ "gen" }, err)
  end)

  it("cancelling a task while a generator in it awaits raises CancelledError in the generator", function()
    local seen
    local t = create_task(function()
      local g = coroutine.wrap(function()
        local ok, e = pcall(await, sleep(10))
        seen = not ok and asyncio.CancelledError:is(e) and e.message
        error(e, 0)
      end)
      g()
    end)
    await(sleep(0))
    t:cancel("stop")
    assert.is_true(asyncio.CancelledError:is(raises(await, t)))
    assert.is_true(t:cancelled())
    assert.are.equal("stop", seen)
  end)

  it("a generator suspended in an await cannot be resumed by someone else", function()
    -- the sleeps must outlast a loop turn on a loaded machine (or under valgrind): 10 ms
    -- did not, and the generator had moved on when the second task resumed it
    local g = coroutine.wrap(function()
      await(sleep(0.2))
      coroutine.yield("from g")
    end)
    local a = create_task(function() return g() end)
    await(sleep(0))
    local b = create_task(function() return g() end)
    assert.matches("cannot resume a coroutine suspended in an await", tostring(raises(await, b)))
    assert.are.equal("from g", await(a))
    local co = coroutine.create(function() await(sleep(0.2)) end)
    local c = create_task(function() return coroutine.resume(co) end)
    await(sleep(0))
    local ok, msg = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("suspended in an await", msg)
    assert.is_true(await(c))
  end)

  it("nested generators pass awaits through every level", function()
    local got = await(create_task(function()
      local outer = coroutine.wrap(function()
        local inner = coroutine.wrap(function()
          coroutine.yield(await(sleep(0, "deep")))
        end)
        coroutine.yield(inner())
      end)
      return outer()
    end))
    assert.are.equal("deep", got)
  end)

  it("current_task() inside a generator is the task that resumes it", function()
    local t
    t = create_task(function()
      return coroutine.wrap(function() coroutine.yield(asyncio.current_task()) end)()
    end)
    assert.are.equal(t, await(t))
  end)

  it("inside a plain loop callback is a clear error", function()
    local err
    asyncio.get_running_loop():call_soon(function()
      local _
      _, err = pcall(await, sleep(0))
    end)
    await(sleep(0.01))
    assert.matches("await: not inside a task", tostring(err))
    local f, ferr = Future(), nil
    f:add_done_callback(function() ferr = select(2, pcall(await, Future())) end)
    f:set_result()
    await(sleep(0.01))
    assert.matches("not inside a task", tostring(ferr))
  end)

  it("inside a table.sort comparator is a clear error", function()
    local err = task_error(function()
      table.sort({ 3, 1, 2 }, function(a, b) await(sleep(0)); return a < b end)
    end)
    assert.matches("await: cannot suspend here", tostring(err))
    assert.matches("table.sort", tostring(err))
  end)

  it("inside a string.gsub callback or __tostring is a clear error", function()
    local err = task_error(function()
      string.gsub("abc", "%w", function(c) return await(sleep(0, c)) end)
    end)
    assert.matches("cannot suspend here", tostring(err))
    local obj = setmetatable({}, { __tostring = function() return await(sleep(0, "s")) end })
    err = task_error(function() return tostring(obj) end)
    assert.matches("cannot suspend here", tostring(err))
  end)

  it("through a generator resumed from a table.sort comparator is a clear error", function()
    local err = task_error(function()
      local g = coroutine.wrap(function() while true do coroutine.yield(await(sleep(0, true))) end end)
      table.sort({ 3, 1, 2 }, function(a, b) g(); return a < b end)
    end)
    assert.matches("cannot suspend here", tostring(err))
  end)

  it("a task left by a failed await in a comparator is not left waiting", function()
    local f = Future()
    local t = create_task(function()
      pcall(table.sort, { 2, 1 }, function(a, b) await(f); return a < b end)
      return "went on"
    end)
    assert.are.equal("went on", await(t))
    f:set_result()
    await(sleep(0))
  end)

  it("inside a comparator is fine when nothing needs to suspend", function()
    local done = Future()
    done:set_result(true)
    local sorted = await(create_task(function()
      local t = { 3, 1, 2 }
      table.sort(t, function(a, b) return await(done) and a < b end)
      return t
    end))
    assert.are.same({ 1, 2, 3 }, sorted)
  end)

  -- Awaiting coroutine objects nests a C call a level, and where nothing can yield the
  -- restack yield that unwinds a deep chain cannot be used: Lua's C-call limit (200)
  -- stopped such chains near 200 levels. They run as deep as in a task's body.
  describe("a chain of 20,000 awaits where nothing can yield", function()
    local count
    count = async(function(n, bottom)
      if n == 0 then return bottom and bottom() or 0 end
      local v = await(count(n - 1, bottom)) -- not a tail call: each level nests
      return v + 1
    end)

    it("in a table.sort comparator, a string.gsub callback, __tostring and require", support.in_task(function()
      assert.are.equal(20000, in_comparator(function() return await(count(20000)) end))
      assert.are.equal("20000", (string.gsub("x", "x", function() return tostring(await(count(20000))) end)))
      local obj = setmetatable({}, { __tostring = function() return "n=" .. await(count(20000)) end })
      assert.are.equal("n=20000", tostring(obj))
      package.preload["deep_await_module"] = function() return await(count(20000)) end
      assert.are.equal(20000, require("deep_await_module"))
      package.loaded["deep_await_module"], package.preload["deep_await_module"] = nil, nil
    end))

    it("an await that must suspend at the bottom is still the clear error, caught there", support.in_task(function()
      local err = in_comparator(function()
        return select(2, pcall(await, count(20000, function()
          local ok, e = pcall(await, sleep(0))
          assert(not ok)
          error(e, 0)
        end)))
      end)
      assert.matches("await: cannot suspend here", tostring(err))
      err = select(2, pcall(table.sort, { 2, 1 }, function()
        await(count(20000, function() await(asyncio.Future()) end))
      end))
      assert.matches("await: cannot suspend here", tostring(err))
    end))

    it("through a generator resumed deep inside, suspending is the clear error", support.in_task(function()
      local err = select(2, pcall(table.sort, { 2, 1 }, function()
        await(count(20000, function()
          local g = coroutine.wrap(function() coroutine.yield(await(sleep(0, 1))) end)
          return g()
        end))
      end))
      assert.matches("cannot suspend here", tostring(err))
    end))

    it("coroutine.yield deep inside is Lua's error for a yield across a C call", support.in_task(function()
      local err = select(2, pcall(table.sort, { 2, 1 }, function()
        await(count(20000, function() coroutine.yield(1) end))
      end))
      assert.matches("attempt to yield across a C%-call boundary", tostring(err))
    end))

    it("an error at the bottom reaches the callback's caller; <close> variables ran", support.in_task(function()
      local e, closed = {}, 0
      local deep
      deep = async(function(n)
        local _ <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
        if n == 0 then error(e) end
        local v = await(deep(n - 1))
        return v
      end)
      local ok, err = pcall(table.sort, { 2, 1 }, function() await(deep(20000)) end)
      assert.is_false(ok)
      assert.are.equal(e, err)
      assert.are.equal(20001, closed)
    end))

    it("the task still sees itself and its context vars down there", support.in_task(function()
      local var = asyncio.ContextVar("deep")
      var:set("mine")
      local me = asyncio.current_task()
      assert.are.equal(20001, in_comparator(function()
        return await(count(20000, function()
          return asyncio.current_task() == me and var:get() == "mine" and 1 or -1
        end))
      end))
    end))
  end)
end)

describe("top-level await", function()
  it("returns as soon as what it awaits is done, not at the loop's next unrelated event", function()
    -- a future whose timer is overdue when the loop runs again completes in the first phase
    -- of that iteration: the loop must not then block in poll until the background task's
    -- 3 s timer (it did, found as a 10 s stall under valgrind)
    local out, status = run_alua([[
      local bg = asyncio.create_task(function() await(asyncio.sleep(3)) end)
      await(asyncio.sleep(0))
      local s = asyncio.ensure_future(asyncio.sleep(0.001, "done"))
      local t0 = os.clock()
      while os.clock() - t0 < 0.02 do end
      local w0 = asyncio.get_running_loop():time()
      local v = await(s)
      print(v, asyncio.get_running_loop():time() - w0 < 1)
      bg:cancel()
    ]])
    assert.are.equal(0, status)
    assert.are.equal("done\ttrue\n", out)
  end)

  it("runs the loop until a coroutine object completes, as the main task", function()
    local inside
    local r = pack(await(async(function()
      inside = asyncio.current_task()
      await(sleep(0.01))
      return "a", "b"
    end)()))
    assert.are.same({ n = 2, "a", "b" }, r)
    assert.is_not_nil(inside)
    assert.is_true(inside:done())
  end)

  it("runs tasks created before it", function()
    local ran = false
    local t = create_task(function() ran = true end)
    assert.is_false(ran)
    await(sleep(0))
    assert.is_true(ran)
    await(t)
  end)

  it("of a future that nothing can complete is an error, not a hang", function()
    local f = Future()
    assert.matches("can never complete", tostring(raises(await, f)))
    f:cancel()
  end)

  it("of a task stuck on a future nothing can complete is an error, not a hang", function()
    local f = Future()
    local t = create_task(function() await(f) end)
    assert.matches("can never complete", tostring(raises(await, t)))
    t:cancel()
    assert.is_false(pcall(await, t))
  end)

  it("raises the error of what it awaited", function()
    local t = create_task(function() error({ "top" }) end)
    assert.are.same({ "top" }, raises(await, t))
  end)
end)

describe("deep recursion", function()
  local rec
  rec = async(function(n)
    if n == 0 then
      await(sleep(0))
      return 0
    end
    return await(rec(n - 1)) + 1
  end)

  it("async functions awaiting each other 10000 deep, suspending at the bottom", function()
    assert.are.equal(10000, await(rec(10000)))
  end)

  it("10000 deep inside a task, suspending at every level", function()
    local deep
    deep = async(function(n)
      await(sleep(0))
      if n == 0 then return "bottom" end
      return await(deep(n - 1))
    end)
    assert.are.equal("bottom", await(create_task(deep(10000))))
  end)

  it("an error 10000 deep reaches the top unchanged", function()
    local e = {}
    local fail
    fail = async(function(n)
      if n == 0 then await(sleep(0)); error(e) end
      return await(fail(n - 1))
    end)
    assert.are.equal(e, raises(await, fail(10000)))
  end)

  it("cancelling a task 10000 awaits deep unwinds it", function()
    local closed = 0
    local bottom = asyncio.Event() -- (a fixed delay is too short under ASan or valgrind)
    local deep
    deep = async(function(n)
      local _ <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
      if n == 0 then
        bottom:set()
        await(sleep(60))
      end
      return await(deep(n - 1))
    end)
    local t = create_task(deep(10000))
    await(bottom:wait())
    t:cancel()
    assert.is_true(asyncio.CancelledError:is(raises(await, t)))
    assert.are.equal(10001, closed)
  end)

  it("10000 deep through pcall at every level (each level a C call)", function()
    -- await is C: each inline await nests a C call, and so does pcall; Lua allows 200
    local prec
    prec = async(function(n)
      if n == 0 then
        await(sleep(0))
        return 0
      end
      local ok, v = pcall(await, prec(n - 1))
      assert(ok, v)
      return v + 1
    end)
    assert.are.equal(10000, await(create_task(prec(10000))))
  end)

  it("10000 deep inside a coroutine.wrap generator running in a task", function()
    local gen = coroutine.wrap(function()
      coroutine.yield(await(rec(10000)))
      coroutine.yield("after")
    end)
    assert.are.equal(10000, gen())
    assert.are.equal("after", gen())
  end)

  -- `return await(f(n - 1))`, the call form (stock Lua's only one), is a proper tail call
  -- as `return await f()` is (syntax_spec): the returning function's frame goes. Were it
  -- kept (with await's C frame), Lua's stack would overflow near 200,000 levels.
  describe("return await(f(n - 1)) is a proper tail call", function()
    local down
    down = async(function(n, every)
      if n == 0 then return "bottom", n end
      if every and n % every == 0 then await(sleep(0)) end
      return await(down(n - 1, every))
    end)

    it("300,000 levels in a task", function()
      assert.are.same({ "bottom", 0, n = 2 }, pack(await(create_task(down(300000)))))
    end)

    it("300,000 levels, suspending every 1,000", function()
      assert.are.same({ "bottom", 0, n = 2 }, pack(await(create_task(down(300000, 1000)))))
    end)

    it("300,000 levels inside a coroutine.wrap generator in a task", support.in_task(function()
      local gen = coroutine.wrap(function() coroutine.yield(await(down(300000, 1000))) end)
      assert.are.equal("bottom", gen())
    end))

    it("300,000 levels inside a table.sort comparator (nothing can yield there)", support.in_task(function()
      assert.are.equal("bottom", in_comparator(function() return await(down(300000)) end))
    end))

    it("an error 300,000 levels down reaches the top; <close> variables above it run", function()
      local e, closed = {}, 0
      local fail
      fail = async(function(n)
        if n == 0 then await(sleep(0)); error(e) end
        if n == 150000 then
          local _ <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
          local v = await(fail(n - 1)) -- not a tail call: a to-be-closed variable is open
          return v
        end
        return await(fail(n - 1))
      end)
      assert.are.equal(e, raises(await, create_task(fail(300000))))
      assert.are.equal(1, closed)
    end)

    it("results pass through every level, nils and all", function()
      local many
      many = async(function(n)
        if n == 0 then return nil, 2, nil end
        return await(many(n - 1))
      end)
      assert.are.same({ nil, 2, nil, n = 3 }, pack(await(create_task(many(1000)))))
      assert.are.same({ nil, 2, nil, n = 3 }, pack(await(many(1000))))
    end)

    it("a non-tail await below the tail ones keeps its own results", function()
      local count
      count = async(function(n)
        if n == 0 then return 0 end
        if n % 2 == 0 then return await(count(n - 1)) + 1 end
        return await(count(n - 1))
      end)
      assert.are.equal(500, await(create_task(count(1000))))
    end)
  end)

  it("a deep chain that never suspends lets no other task run meanwhile", support.in_task(function()
    local flat
    flat = async(function(n)
      if n == 0 then return 0 end
      return await(flat(n - 1)) + 1
    end)
    local other_ran = false
    local other = create_task(function() other_ran = true end)
    assert.are.equal(10000, await(flat(10000)))
    assert.is_false(other_ran, "awaiting a coroutine object went through the loop")
    await(other)
    assert.is_true(other_ran)
  end))
end)

describe("what a task suspended in await keeps", function()
  -- await is one C function called by the awaiting code: a suspended task's thread holds
  -- its body and that C frame, no Lua frame of the stdlib in between (each frame a Lua
  -- thread has made costs 64 bytes for as long as the thread lives)
  local function frames_of(body)
    local t = create_task(body)
    await(sleep(0))
    local frames = t:get_stack()
    t:cancel()
    pcall(await, t)
    return frames
  end

  -- a chunk of its own, where `await f(args)` is the keyword form (this file passes
  -- await around as a value, which turns the transform's shortcut off)
  local function keyword_body(src, ...)
    return assert(load("local asyncio, inner = ...; return function() " .. src .. " end"))(...)
  end

  it("await(future), await(sleep(d)), await sleep(d) and await of a Task: the body only", function()
    local here = debug.getinfo(1, "S").short_src
    local bodies = {
      function() await(Future()) end,
      function() await(sleep(60)) end,
      function() await(create_task(function() await(sleep(60)) end)) end,
    }
    for i, body in ipairs(bodies) do
      local frames = frames_of(body)
      assert.are.equal(1, #frames, "case " .. i .. ": " .. #frames .. " frames")
      assert.are.equal(here, frames[1].source)
    end
    assert.are.equal(1, #frames_of(keyword_body("await asyncio.sleep(60)", asyncio)))
  end)

  it("an async function awaited: its body and the caller's", function()
    local async function inner() await(Future()) end
    assert.are.equal(2, #frames_of(keyword_body("await inner()", asyncio, inner)))
    assert.are.equal(3, #frames_of(function() await(inner()) end)) -- and await's C frame
  end)
end)
