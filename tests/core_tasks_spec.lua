-- core_tasks_spec.lua — Tasks: creation, names, current_task/all_tasks, results, errors
-- and cancellation. Mirrors CPython's test_tasks.py (BaseTaskTests).

local support = require "tests.support"
local sleep, create_task, Future = asyncio.sleep, asyncio.create_task, asyncio.Future
local CancelledError = asyncio.CancelledError
local pack = table.pack

-- every spec awaits or cancels what it creates: fail the one that leaves tasks running
after_each(support.expect_no_tasks_left)

local raises = support.raises

local run_alua = support.run_alua

local function closer(fn) return setmetatable({}, { __close = fn }) end

describe("create_task", function()
  it("wraps a coroutine object (test_create_task)", function()
    local t = create_task(async(function(a, b) return a + b end)(1, 2))
    assert.are.equal(3, await(t))
    assert.is_true(t:done())
  end)

  -- create_task knows the coroutine object made last and untaken by its address (await.c,
  -- coro.c): the others take the metatable test
  it("takes the coroutine object made last, an older one untaken, and refuses one taken", function()
    local work = async(function(i) return i end)
    local older, last = work(1), work(2)
    local t_last, t_older = create_task(last), create_task(older)
    assert.are.equal(2, await(t_last))
    assert.are.equal(1, await(t_older))
    local again = work(3)
    local t = create_task(again, "named")
    assert.are.equal("named", t:get_name())
    assert.matches("already awaited", tostring(raises(create_task, again)))
    assert.are.equal(3, await(t))
  end)

  it("runs any function with arguments: create_task(fn, ...)", function()
    local plain = create_task(function(a, b) return a .. b end, "x", "y")
    local as = create_task(async(function(a) return a * 2 end), 21)
    assert.are.equal("xy", await(plain))
    assert.are.equal(42, await(as))
  end)

  it("a task starts at the next loop iteration, not when created", function()
    local started = false
    local t = create_task(function() started = true end)
    assert.is_false(started)
    assert.is_false(t:done())
    await(sleep(0))
    assert.is_true(started)
    await(t)
  end)

  it("tasks created together start in creation order", function()
    local log = {}
    local ts = {}
    for i = 1, 5 do ts[i] = create_task(function() log[#log + 1] = i end) end
    await(asyncio.gather(table.unpack(ts)))
    assert.are.same({ 1, 2, 3, 4, 5 }, log)
  end)

  -- task.c runs tasks that end in their first step one after another on one thread, in
  -- one resume (task_start_next_here): each must still be itself and end as alone
  it("tasks starting together run in order, each as the current task, whatever the others do", function()
    local log, t = {}, {}
    local function note(name, task)
      log[#log + 1] = name
      assert.are.equal(t[task or name], asyncio.current_task())
    end
    t.a = create_task(function() note("a") return 1 end)
    t.b = create_task(function() note("b") error("b failed") end)
    t.c = create_task(function()
      note("c")
      t.late = create_task(function() note("late") end)
      return 1, 2
    end)
    t.d = create_task(function() note("d") t.e:cancel() end)
    t.e = create_task(function() note("e") end)
    asyncio.get_running_loop():call_soon(function() log[#log + 1] = "callback" end)
    t.f = create_task(function()
      note("f")
      await(sleep(0))
      note("f2", "f")
      return "f"
    end)
    t.g = create_task(async(function(x) note("g") return x end)("g"))
    local r = pack(await(asyncio.gather(t.a, t.b, t.c, t.d, t.e, t.f, t.g, { return_exceptions = true })))
    await(t.late)
    assert.are.same({ "a", "b", "c", "d", "callback", "f", "g", "late", "f2" }, log)
    assert.are.equal(1, r[1])
    assert.matches("b failed", tostring(r[2]))
    assert.are.equal(1, r[3])
    assert.are.same({ 1, 2 }, { t.c:result() })
    assert.is_nil(r[4])
    assert.is_true(CancelledError:is(r[5]))
    assert.are.equal("f", r[6])
    assert.are.equal("g", r[7])
  end)

  it("tasks starting together each see their own context (ContextVar), whatever the one before set", function()
    local var = asyncio.ContextVar("batch_var", "default")
    local seen = {}
    local function body(i)
      seen[i] = var:get()
      var:set("set by " .. i)
      return i
    end
    await(create_task(function() -- a task's context, not the top level's
      local ts = {}
      ts[1] = create_task(body, 1)
      var:set("outer")
      ts[2] = create_task(body, 2)
      ts[3] = create_task(body, 3)
      await(asyncio.gather(ts))
      assert.are.same({ "default", "outer", "outer" }, seen)
      assert.are.equal("outer", var:get())
    end))
    assert.are.equal("default", var:get())
  end)

  it("a task created by a task in its first step starts at the next iteration, not in the same run", function()
    local count, stop = 0, false
    local function chain()
      count = count + 1
      if not stop and count < 1000000 then create_task(chain) end
    end
    create_task(chain)
    await(sleep(0.01)) -- each loop iteration runs one task of the chain, then timers
    local at_wake = count
    stop = true
    await(sleep(0))
    await(sleep(0))
    assert.is_true(at_wake >= 1 and at_wake < 1000000, "count at wake: " .. at_wake)
  end)

  it("20,000 tasks created together start in creation order", function()
    -- (the ready queue grows to 32,768 entries, then halves as the first steps drain it)
    local log, ts, n = {}, {}, 20000
    for i = 1, n do ts[i] = create_task(function() log[#log + 1] = i end) end
    await(asyncio.gather(ts))
    assert.are.equal(n, #log)
    for i = 1, n do
      if log[i] ~= i then assert.are.equal(i, log[i], "task " .. i .. " out of order") end
    end
  end)

  it("tasks suspended after thousands of dead coroutine objects keep their frames apart", function()
    -- the alua command's allocator gives a dead coroutine object's block to two CallInfos
    -- (vm/heap.c): each task's three frames must stay its own while all of them wait
    local one = async(function(i) return i end)
    local two = async(function(i, j) return i + j end)
    for i = 1, 5000 do local _ = one(i); local _ = two(i, i); local _ = sleep(0.001, i) end
    collectgarbage()
    local gate = Future()
    local function deep(i, d)
      if d == 0 then
        local got = await(gate)
        return i + got
      end
      local before = i * 3 + d
      local r = deep(i, d - 1)
      assert(before == i * 3 + d, "a frame's local changed while it waited")
      return r
    end
    local ts = {}
    for i = 1, 5000 do ts[i] = create_task(function() return deep(i, 3) end) end
    await(sleep(0))
    gate:set_result(1)
    local r = pack(await(asyncio.gather(ts)))
    assert.are.equal(5000, r.n)
    for i = 1, 5000 do assert.are.equal(i + 1, r[i]) end
  end)

  it("rejects what is neither a coroutine object, a function nor an awaitable", function()
    assert.matches("create_task: expected a coroutine object, a function or an awaitable, got number",
      tostring(raises(create_task, 42)))
    assert.matches("got nil", tostring(raises(create_task, nil)))
  end)

  it("wraps any awaitable (create_task(asyncio.sleep(d)) as in Python) in a task awaiting it", function()
    local t = create_task(asyncio.sleep(0.01, "slept", 2), "napper")
    assert.are.equal("napper", t:get_name())
    assert.are.same({ "slept", 2 }, { await(t) })
    local inner = create_task(function() return "inner" end)
    assert.are.equal("inner", await(create_task(inner)))
    assert.are.equal(0, select("#", await(create_task(asyncio.sleep(0)))))
  end)

  it("a task takes the coroutine object's function and arguments, not the object", function()
    -- the object is garbage once wrapped: collected before the task even starts, while
    -- the task still runs its body with its arguments
    local weak = setmetatable({}, { __mode = "k" })
    local arg = {}
    local got
    local c = async(function(a, b) got = { a == arg, b } end)(arg, "b")
    weak[c] = true
    local t = create_task(c)
    c = nil
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak), "the task kept its coroutine object alive")
    assert.is_false(t:done())
    await(t)
    assert.are.same({ true, "b" }, got)
    -- and lets the arguments go once the body has them
    weak[arg] = true
    arg = nil
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak), "the finished task kept its body's argument alive")
  end)

  it("a coroutine object can be wrapped once", function()
    local c = async(function() end)()
    await(create_task(c))
    assert.matches("already awaited", tostring(raises(create_task, c)))
  end)
end)

describe("anchoring", function()
  -- a pending task nobody references lives in a registry slot of the loop's (anchor.c);
  -- a done task gives it back, and the next tasks take the same slots again
  it("a pending task nobody references survives collections; its slot is reused once it is done", function()
    local reg = debug.getregistry()
    local done = 0
    local function batch()
      for _ = 1, 200 do
        create_task(function() await(sleep(0)); done = done + 1 end)
      end
      collectgarbage(); collectgarbage()
      for _ = 1, 5 do await(sleep(0)) end
    end
    batch()
    assert.are.equal(200, done)
    local len = #reg
    batch()
    assert.are.equal(400, done)
    assert.are.equal(len, #reg, "the second batch took new registry slots")
  end)

  it("slots given back do not disturb luaL_ref's own references", function()
    -- cancel messages use luaL_ref on the same registry, between tasks that come and go
    for round = 1, 3 do
      local tasks = {}
      for i = 1, 50 do
        tasks[i] = create_task(function() await(sleep(10)) end)
      end
      await(sleep(0))
      for i = 1, 50, 2 do tasks[i]:cancel("stop " .. round .. "." .. i) end
      for i = 2, 50, 2 do tasks[i]:cancel() end
      for i = 1, 50 do
        local ok, err = pcall(await, tasks[i])
        assert.is_false(ok)
        assert.is_true(CancelledError:is(err))
        if i % 2 == 1 then assert.are.equal("stop " .. round .. "." .. i, err.message) end
      end
    end
  end)
end)

describe("task names", function()
  it("default to Task-N, can be given and changed (test_task_set_name)", function()
    local a = create_task(function() end)
    assert.matches("^Task%-%d+$", a:get_name())
    local b = create_task(async(function() end)(), "worker")
    assert.are.equal("worker", b:get_name())
    b:set_name("renamed")
    assert.are.equal("renamed", b:get_name())
    b:set_name(42)
    assert.are.equal("42", b:get_name())
    assert.matches("name='42'", tostring(b))
    await(a); await(b)
  end)

  it("a collected task's name and traceback go with it; a task made in its place has its own", function()
    -- (a task keeps them out of line, by its address: task_gc forgets them)
    local function batch(n)
      local ts = {}
      for i = 1, n do
        ts[i] = create_task(function() if i % 2 == 0 then error("failed " .. i) end end,
          "named " .. i .. string.rep("x", 100))
      end
      for i = 1, n do pcall(await, ts[i]) end
    end
    batch(2000)
    collectgarbage(); collectgarbage()
    local before = collectgarbage("count")
    batch(2000)
    collectgarbage(); collectgarbage()
    assert.is_true(collectgarbage("count") - before < 100, "names kept after their tasks: "
      .. (collectgarbage("count") - before) .. " KiB")
    for _ = 1, 200 do
      local t = create_task(function() end)
      assert.matches("^Task%-%d+$", t:get_name())
      await(t)
    end
  end)

  -- create_task makes the Task (registered for finalization: it is named) before the
  -- name's __tostring runs; the half-made Task, never anchored nor counted as pending,
  -- once collected must not take another pending task's place in all_tasks()
  it("a name whose __tostring fails leaves no half-made task behind", function()
    local bad = setmetatable({}, { __tostring = function() error("no name for you") end })
    local work = async(function() end)
    for _ = 1, 3 do
      assert.matches("no name for you", tostring(raises(create_task, work(), bad)))
      assert.matches("no name for you", tostring(raises(create_task, work(), bad)))
    end
    collectgarbage(); collectgarbage()
    local gate = Future()
    local a = create_task(function() await(gate) end)
    local b = create_task(work())
    assert.are.same({ a, b }, asyncio.all_tasks())
    gate:set_result()
    await(a); await(b)
  end)

  it("default names count up", function()
    local a, b = create_task(function() end), create_task(function() end)
    local na, nb = tonumber(a:get_name():match("%d+")), tonumber(b:get_name():match("%d+"))
    assert.are.equal(na + 1, nb)
    await(a); await(b)
  end)
end)

describe("current_task and all_tasks", function()
  it("current_task() is the running task, nil outside (test_current_task)", function()
    assert.is_nil(asyncio.current_task())
    assert.are.equal(1, select("#", asyncio.current_task()), "one value: nil, not nothing")
    local t
    t = create_task(function()
      assert.are.equal(t, asyncio.current_task())
      await(sleep(0))
      return asyncio.current_task()
    end)
    assert.are.equal(t, await(t))
    assert.is_nil(asyncio.current_task())
  end)

  it("current_task() inside an awaited coroutine object is the awaiting task", function()
    local inner = async(function() return asyncio.current_task() end)
    local t
    t = create_task(function() return await(inner()) end)
    assert.are.equal(t, await(t))
  end)

  it("all_tasks() lists the pending tasks, not the done ones (test_all_tasks)", function()
    local gate = Future()
    local a = create_task(function() await(gate) end)
    local b = create_task(function() end)
    local all = asyncio.all_tasks()
    assert.are.equal(2, #all)
    local set = {}
    for _, t in ipairs(all) do set[t] = true end
    assert.is_true(set[a] and set[b])
    await(b)
    all = asyncio.all_tasks()
    assert.are.same({ a }, all)
    gate:set_result()
    await(a)
    assert.are.same({}, asyncio.all_tasks())
  end)

  it("all_tasks() lists them oldest first, whichever anchor slots they took", function()
    -- (found through their registry anchors: a new task takes the slot a done one gave
    -- back, so slot order is not creation order)
    local gate = Future()
    local waiting = {}
    for i = 1, 6 do
      waiting[i] = create_task(function() await(gate) end)
      create_task(function() end)
    end
    await(sleep(0))
    for i = 7, 12 do waiting[i] = create_task(function() await(gate) end) end
    local all = asyncio.all_tasks()
    assert.are.same(waiting, all)
    gate:set_result()
    await(asyncio.gather(table.unpack(waiting)))
    assert.are.same({}, asyncio.all_tasks())
  end)

  it("all_tasks() includes the task calling it", function()
    local t
    t = create_task(function()
      for _, x in ipairs(asyncio.all_tasks()) do
        if x == t then return true end
      end
      return false
    end)
    assert.is_true(await(t))
  end)
end)

describe("task results", function()
  it("await returns all the results, nils included", function()
    local t = create_task(function() return nil, 2, nil end)
    assert.are.same({ n = 3, nil, 2, nil }, pack(await(t)))
    assert.are.same({ n = 3, nil, 2, nil }, pack(t:result()))
  end)

  -- a task's first step checks the stack only above a few values (task.c)
  it("a task gets 60 arguments and gives 60 results, made from a function or a coroutine object", function()
    local args = {}
    for i = 1, 60 do args[i] = i end
    local function all(...) return select("#", ...), ... end
    local from_fn = pack(await(create_task(all, table.unpack(args))))
    local from_coro = pack(await(create_task(async(all)(table.unpack(args)))))
    for _, r in ipairs({ from_fn, from_coro }) do
      assert.are.equal(61, r.n)
      assert.are.equal(60, r[1])
      assert.are.equal(60, r[61])
    end
  end)

  it("a task with no results gives none", function()
    local t = create_task(function() end)
    assert.are.equal(0, select("#", await(t)))
  end)

  it("can be awaited by many and again after it is done", function()
    local t = create_task(function() await(sleep(0.01)); return "r" end)
    local w1 = create_task(function() return await(t) end)
    local w2 = create_task(function() return await(t) end)
    assert.are.equal("r", await(w1))
    assert.are.equal("r", await(w2))
    assert.are.equal("r", await(t))
    assert.are.equal("r", await(t))
  end)

  it("result() of a pending task raises InvalidStateError", function()
    local t = create_task(function() end)
    assert.is_true(asyncio.InvalidStateError:is(raises(t.result, t)))
    assert.is_true(asyncio.InvalidStateError:is(raises(t.exception, t)))
    await(t)
  end)

  it("a task cannot await itself", function()
    local t
    t = create_task(function() await(t) end)
    assert.matches("cannot await itself", tostring(raises(await, t)))
  end)

  it("coroutine.yield in a task's body is a clear error", function()
    local t = create_task(function() coroutine.yield(1) end)
    assert.matches("use await", tostring(raises(await, t)))
  end)
end)

describe("errors across tasks", function()
  it("an error reaches the awaiting task unchanged (test_exception_chaining...)", function()
    local e = { reason = "table error" }
    local t = create_task(function() await(sleep(0)); error(e) end)
    assert.are.equal(e, raises(await, t))
    assert.are.equal(e, t:exception())
    assert.are.equal(e, raises(t.result, t))
    assert.is_false(t:cancelled())
  end)

  it("a string error keeps its position prefix", function()
    local t = create_task(function() error("boom") end)
    local err = raises(await, t)
    assert.matches("core_tasks_spec.lua:%d+: boom$", err)
  end)

  it("an error passes through a chain of awaiting tasks", function()
    local e = { "deep" }
    local inner = create_task(function() error(e) end)
    local mid = create_task(function() return await(inner) end)
    local outer = create_task(function() return await(mid) end)
    assert.are.equal(e, raises(await, outer))
  end)

  it("an exception never retrieved is reported on stderr with the task's traceback", function()
    local out, status = run_alua([[
      local function where_it_failed() error("lost error") end
      asyncio.create_task(function() await(asyncio.sleep(0)); where_it_failed() end)
      local seen = asyncio.create_task(function() error("seen error") end)
      await(asyncio.sleep(0.01))
      assert(seen:exception())
    ]])
    assert.are.equal(0, status)
    assert.matches("Task exception was never retrieved\n[^\n]*:1: lost error\nstack traceback:", out)
    assert.matches("where_it_failed", out)
    assert.not_matches("seen error", out)
  end)

  it("an error in one task does not disturb others", function()
    local bad = create_task(function() error("x") end)
    local good = create_task(function() await(sleep(0.01)); return "fine" end)
    assert.are.equal("fine", await(good))
    assert.is_not_nil(bad:exception())
  end)
end)

-- A Task is registered for finalization only if it starts with a name or a context; one
-- that comes to need its finalizer later (it fails, is named, sets a ContextVar, keeps a
-- cancel message) gets a watcher then (finalize.c). What the finalizer does must still
-- happen, when it did.
describe("what a collected task leaves behind", function()
  -- the growth of Lua's heap across fn, once what fn made is collected (KB)
  local function kept_by(fn)
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    fn()
    collectgarbage()
    collectgarbage()
    return collectgarbage("count") - before
  end

  local N = 2000 -- each task below leaves ~1 KB behind if its finalizer does not run
  local function big(c, i) return string.rep(c, 1000) .. i end

  it("lets go of what the bodies of finished tasks captured, a body ending in a sleep too", function()
    -- three tasks of one body (one site): nothing of theirs may stay reachable from the loop
    local alive = setmetatable({}, { __mode = "k" })
    local tasks = {}
    for i = 1, 3 do
      local captured = { i }
      alive[captured] = true
      tasks[i] = create_task(function()
        local c = captured
        await asyncio.sleep(0.01)
      end)
    end
    await(asyncio.gather(tasks[1], tasks[2], tasks[3]))
    tasks = nil
    collectgarbage()
    collectgarbage()
    local left = {}
    for c in pairs(alive) do left[#left + 1] = c[1] end
    assert.are.same({}, left)
  end)

  it("a failed task nobody retrieved is reported by the collection that finds it dead", function()
    local out, status = run_alua([[
      local t = asyncio.create_task(function() error("lost in a task") end)
      await(asyncio.sleep(0))
      t = nil
      io.stderr:write("collecting\n")
      collectgarbage()
      io.stderr:write("collected\n")
    ]])
    assert.are.equal(0, status)
    assert.matches("collecting\nTask exception was never retrieved\n[^\n]*:1: lost in a task\n.*collected\n", out)
  end)

  it("a failed task still held at the end is reported when the state closes", function()
    local out, status = run_alua([[
      held = asyncio.create_task(function() error("held to the end") end)
      await(asyncio.sleep(0))
      io.stderr:write("end of script\n")
    ]])
    assert.are.equal(0, status)
    assert.matches("end of script\nTask exception was never retrieved\n[^\n]*:1: held to the end", out)
  end)

  it("a failure whose error value's __tostring raises is still reported, each one", function()
    local out, status = run_alua([[
      local evil = setmetatable({}, {__tostring = function() error("tostring exploded") end})
      for i = 1, 30 do asyncio.create_task(function() error(evil) end) end
      local f = asyncio.Future()
      f:set_exception(evil)
      f = nil
      await(asyncio.sleep(0))
      collectgarbage()
      collectgarbage()
      io.stderr:write("collected\n")
    ]])
    assert.are.equal(0, status)
    local before = out:match("^(.*)collected\n")
    assert.is_not_nil(before, out)
    local _, tasks = before:gsub("Task exception was never retrieved\n%(a table error value whose __tostring raised: [^\n]*tostring exploded%)", "")
    local _, futures = before:gsub("Future exception was never retrieved\n%(a table error value whose __tostring raised: [^\n]*tostring exploded%)", "")
    assert.are.equal(30, tasks, out)
    assert.are.equal(1, futures, out)
  end)

  it("the traceback of a failure someone retrieved", function()
    assert.is_true(kept_by(function()
      local all = {}
      for i = 1, N do
        all[i] = create_task(function() error(big("e", i)) end)
        assert.is_false(pcall(await, all[i]))
      end
    end) < N / 8)
  end)

  it("a name given after creation", function()
    assert.is_true(kept_by(function()
      local all = {} -- all alive until the end: no task reuses another's memory meanwhile
      for i = 1, N do
        all[i] = create_task(function() end)
        all[i]:set_name(big("n", i))
        await(all[i])
      end
    end) < N / 8)
  end)

  it("a name given at creation", function()
    assert.is_true(kept_by(function()
      local all = {}
      for i = 1, N do
        all[i] = create_task(function() end, big("n", i))
        await(all[i])
      end
    end) < N / 8)
  end)

  it("a context the task set", function()
    local var = asyncio.ContextVar("left_behind", "default")
    assert.is_true(kept_by(function()
      local all = {}
      for i = 1, N do
        all[i] = create_task(function() var:set(big("c", i)) end)
        await(all[i])
      end
    end) < N / 8)
    assert.are.equal("default", var:get())
  end)

  it("a cancel message", function()
    assert.is_true(kept_by(function()
      local all = {}
      for i = 1, N do
        all[i] = create_task(function() await(sleep(10)) end)
        await(sleep(0))
        all[i]:cancel(big("m", i))
        assert.is_true(CancelledError:is(raises(await, all[i])))
      end
    end) < N / 8)
  end)

  it("a pending task's sleep when the state closes (lua_close)", function()
    local out, status = support.run_alua_checked([[
      for i = 1, 100 do asyncio.create_task(function() await(asyncio.sleep(100)) end) end
      named = asyncio.create_task(function() await(asyncio.sleep(100)) end, "named")
      await(asyncio.sleep(0))
      os.exit(0, true) -- closes the state with the tasks pending
    ]])
    assert.are.equal(0, status, out)
  end)
end)

describe("cancellation", function()
  it("cancel(msg) raises CancelledError with the message in the awaiter (test_cancel_with_message_then_future_result)", function()
    local t = create_task(function() await(sleep(10)) end)
    await(sleep(0))
    assert.is_true(t:cancel("my message"))
    local e = raises(await, t)
    assert.is_true(CancelledError:is(e))
    assert.are.equal("my message", e.message)
    assert.is_true(t:cancelled())
    assert.is_true(CancelledError:is(raises(t.result, t)))
    assert.is_true(CancelledError:is(raises(t.exception, t)))
  end)

  it("cancel before the task starts: the body never runs (test_cancel_with_message_before_starting_task)", function()
    local ran = false
    local t = create_task(function() ran = true end)
    assert.is_true(t:cancel("early"))
    local e = raises(await, t)
    assert.is_false(ran)
    assert.is_true(t:cancelled())
    assert.are.equal("early", e.message)
  end)

  it("cancel() of a done task returns false (test_cancel_at_end)", function()
    local t = create_task(function() return 1 end)
    await(t)
    assert.is_false(t:cancel())
    assert.is_false(t:cancelled())
    assert.are.equal(1, t:result())
  end)

  it("cancel() twice before delivery delivers one CancelledError", function()
    local t = create_task(function()
      local ok, e = pcall(await, sleep(10))
      assert(not ok and CancelledError:is(e))
      await(sleep(0.01)) -- a second delivery would end the task here
      return "once"
    end)
    await(sleep(0))
    assert.is_true(t:cancel())
    assert.is_true(t:cancel())
    assert.are.equal("once", await(t))
    assert.are.equal(2, t:cancelling())
  end)

  it("cancelling a task cancels the Future it awaits (test_cancel_inner_future)", function()
    local f = Future()
    local t = create_task(function() return await(f) end)
    await(sleep(0))
    t:cancel()
    assert.is_true(CancelledError:is(raises(await, t)))
    assert.is_true(f:cancelled())
  end)

  it("cancelling a task cancels the task it awaits (test_cancel_awaited_task)", function()
    local inner = create_task(function() await(sleep(10)) end)
    local outer = create_task(function() await(inner) end)
    await(sleep(0))
    outer:cancel("from outside")
    local e = raises(await, outer)
    assert.are.equal("from outside", e.message)
    assert.is_true(inner:cancelled())
    assert.is_true(outer:cancelled())
  end)

  it("pcall catches CancelledError and the task goes on (test_cancel_task_catching)", function()
    local t = create_task(function()
      local ok, e = pcall(await, sleep(10))
      assert(not ok and CancelledError:is(e))
      await(sleep(0))
      return "survived"
    end)
    await(sleep(0))
    t:cancel()
    assert.are.equal("survived", await(t))
    assert.is_false(t:cancelled())
  end)

  it("a task that raises CancelledError itself ends cancelled", function()
    local t = create_task(function() error(CancelledError("by hand")) end)
    local e = raises(await, t)
    assert.is_true(t:cancelled())
    assert.are.equal("by hand", e.message)
  end)

  it("cancel of the current task is delivered at its next await (test_cancel_current_task)", function()
    local after = false
    local t = create_task(function()
      asyncio.current_task():cancel()
      await(sleep(0))
      after = true
    end)
    assert.is_true(CancelledError:is(raises(await, t)))
    assert.is_false(after)
    assert.is_true(t:cancelled())
  end)

  it("cancel(msg) of the current task keeps the message when it awaits a future", function()
    local t = create_task(function()
      asyncio.current_task():cancel("self")
      await(sleep(10))
    end)
    local e = raises(await, t)
    assert.are.equal("self", e.message)
    local f = Future()
    local u = create_task(function()
      asyncio.current_task():cancel("self2")
      await(f)
    end)
    assert.are.equal("self2", raises(await, u).message)
    assert.is_true(f:cancelled())
  end)

  it("cancel(msg) of the current task keeps the message when it awaits a task", function()
    local inner = create_task(function() await(sleep(10)) end)
    local t = create_task(function()
      asyncio.current_task():cancel("self3")
      await(inner)
    end)
    local e = raises(await, t)
    assert.are.equal("self3", e.message)
    assert.is_true(inner:cancelled())
  end)

  it("<close> variables run when the task is cancelled, even ones that await", function()
    local log = {}
    local t = create_task(function()
      local _ <close> = closer(function(_, err)
        log[#log + 1] = CancelledError:is(err) and "outer closed by cancel" or "outer ?"
      end)
      local _ <close> = closer(function()
        await(sleep(0.01))
        log[#log + 1] = "inner closed after await"
      end)
      await(sleep(10))
    end)
    await(sleep(0))
    t:cancel()
    assert.is_true(CancelledError:is(raises(await, t)))
    assert.are.same({ "inner closed after await", "outer closed by cancel" }, log)
  end)

  it("cancelling() counts requests and uncancel() undoes one (test_cancelling, test_uncancel_basic)", function()
    local seen = {}
    local t
    t = create_task(function()
      local ok = pcall(await, sleep(10))
      assert(not ok)
      seen[1] = t:cancelling()
      seen[2] = t:uncancel()
      seen[3] = t:cancelling()
      await(sleep(0))
      return "ok"
    end)
    await(sleep(0))
    assert.are.equal(0, t:cancelling())
    t:cancel()
    assert.are.equal(1, t:cancelling())
    t:cancel()
    assert.are.equal(2, t:cancelling())
    assert.are.equal("ok", await(t))
    assert.are.same({ 2, 1, 1 }, seen)
  end)

  it("uncancel() down to 0 before delivery withdraws the pending cancellation", function()
    local t
    t = create_task(function()
      asyncio.current_task():cancel()
      asyncio.current_task():uncancel()
      await(sleep(0))
      return "not cancelled"
    end)
    assert.are.equal("not cancelled", await(t))
  end)

  it("a CancelledError is an instance with type, message and traceback", function()
    local t = create_task(function() await(sleep(10)) end)
    await(sleep(0))
    t:cancel()
    local e = raises(await, t)
    assert.are.equal("CancelledError", e.type)
    assert.are.equal("string", type(e.traceback))
    assert.are.equal("CancelledError", tostring(e))
  end)

  it("a chain of 10000 tasks awaiting each other is cancelled without C stack overflow", function()
    local N = 10000
    local tasks = {}
    local reached = 0
    local function link(i)
      reached = i
      if i == N then
        await(sleep(60))
      else
        tasks[i + 1] = create_task(link, i + 1)
        await(tasks[i + 1])
      end
    end
    tasks[1] = create_task(link, 1)
    while reached < N do await(sleep(0.001)) end
    await(sleep(0))
    assert.is_true(tasks[1]:cancel())
    assert.is_true(CancelledError:is(raises(await, tasks[1])))
    for i = N, 1, -1 do
      if not tasks[i]:cancelled() then error("task " .. i .. " not cancelled") end
    end
  end)

  it("a chain of 10000 tasks awaiting each other completes", function()
    local N = 10000
    local function link(i)
      if i == N then await(sleep(0)); return 0 end
      return await(create_task(link, i + 1)) + 1
    end
    assert.are.equal(N - 1, await(create_task(link, 1)))
  end)
end)

describe("asyncio.sleep awaited by a task (the task's own timer, no Future)", function()
  it("is a coroutine object, as in Python, and returns its extra values", function()
    local s = sleep(0.001, "a", "b")
    assert.is_true(asyncio.iscoroutine(s))
    assert.matches("<coroutine 'sleep'>", tostring(s))
    assert.are.same({ "a", "b", n = 2 }, pack(await(s)))
    assert.matches("already awaited", tostring(raises(await, s)))
  end)

  it("asyncio.sleep is a coroutine function: create_task(asyncio.sleep, d, ...) sleeps", function()
    assert.is_true(asyncio.iscoroutinefunction(asyncio.sleep))
    -- 0.2 s (2.4 under valgrind): with 20 ms, valgrind on a busy machine woke this
    -- task from its 5 ms sleep after t's had run out
    local t = create_task(asyncio.sleep, 0.2 * support.SLOWDOWN, "x")
    await(sleep(0.005))
    assert.is_false(t:done())
    assert.are.equal("x", await(t))
    assert.is_false(pcall(await, asyncio.with_timeout(0.005, asyncio.sleep, 1)))
  end)

  it("a sleep cut short by a C boundary does not wake its task later", function()
    local f = Future()
    local t = create_task(function()
      local g = coroutine.wrap(function() await(sleep(0.005, true)) end)
      assert(not pcall(table.sort, { 3, 1, 2 }, function(a, b) g(); return a < b end))
      return await(f)
    end)
    await(sleep(0.03))
    assert.is_false(t:done(), "woken by the timer of the failed sleep")
    f:set_result("ok")
    assert.are.equal("ok", await(t))
  end)

  it("cancelling the sleeping task wakes it at once with the message (test_task_cancel_sleeping_task)", function()
    local t = create_task(function() await(sleep(60)) end)
    await(sleep(0))
    assert.is_true(t:cancel("stop"))
    local err = raises(await, t)
    assert.is_true(CancelledError:is(err))
    assert.are.equal("stop", err.message)
    local t2 = create_task(function() asyncio.current_task():cancel(); await(sleep(60)) end)
    assert.is_true(CancelledError:is(raises(await, t2)))
  end)
end)

-- When a task's body fails, its pcall (task_main) unwinds it and runs its <close>
-- handlers, which may await (Lua 5.4.3+). Such a handler runs right above the task's
-- entry frame, where the body ran, so its last `await` looks like the body's own last
-- await: it must still wait, never be taken for the body's end (a tail await, wt-tail).
describe("a __close handler run by a failing body's unwinding", function()
  -- Starts a task whose body fails with a <close> variable whose handler is `handler`; a
  -- second task sleeping `d` seconds notes its end in `order`, and so does the first.
  local function race(handler, d, cancel)
    local order = {}
    local other = create_task(function()
      await(sleep(d))
      order[#order + 1] = "other"
    end)
    local t = create_task(function()
      local c <close> = closer(handler)
      if cancel then await(sleep(10)) end
      error("boom")
    end)
    t:add_done_callback(function() order[#order + 1] = "failed" end)
    if cancel then
      await(sleep(0))
      t:cancel("stop")
    end
    local err = raises(await, t)
    await(other)
    return order, err
  end

  it("waits for a sleep that ends it (keyword and call forms)", function()
    local order, err = race(function() await asyncio.sleep(0.05) end, 0.01)
    assert.matches("boom", tostring(err))
    assert.are.same({ "other", "failed" }, order)
    order = race(function() await(asyncio.sleep(0.05)) end, 0.01)
    assert.are.same({ "other", "failed" }, order)
    order = race(function() return await asyncio.sleep(0.05) end, 0.01)
    assert.are.same({ "other", "failed" }, order)
  end)

  it("waits for its last sleep after an earlier one", function()
    local order = race(function()
      await asyncio.sleep(0.01)
      await asyncio.sleep(0.05)
    end, 0.03)
    assert.are.same({ "other", "failed" }, order)
  end)

  it("waits for a sleep that ends it while a CancelledError unwinds the body", function()
    local order, err = race(function() await asyncio.sleep(0.05) end, 0.01, true)
    assert.is_true(CancelledError:is(err))
    assert.are.same({ "other", "failed" }, order)
  end)

  it("waits for a Future that ends it, and the task ends as the handler's error says", function()
    local fut = Future()
    local t = create_task(function()
      local c <close> = closer(function() await fut end)
      error("boom")
    end)
    for _ = 1, 3 do await(sleep(0)) end
    assert.is_false(t:done())
    collectgarbage()
    -- a task of its own whose body ends in a sleep, while the first still waits
    local u = create_task(function() await asyncio.sleep(0.01) end)
    await(sleep(0))
    fut:set_exception("from the future")
    assert.matches("from the future", tostring(raises(await, t)))
    assert.are.equal(0, select("#", await(u)))
  end)
end)
