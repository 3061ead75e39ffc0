-- core_tail_spec.lua — a task whose body ends in `await asyncio.sleep(d)` (a bare last
-- await, or `return await` of a sleep giving no values) or in an await of a pending Future
-- or Task gives its thread back while it waits (async/core/tail.c): the body returns at once through Lua's own return, the task
-- keeps the function and the await's line, and ends when the sleep does. Everything a
-- program can see must stay as it was: results, cancellation, closures over the body's
-- locals, <close> variables, task dumps, ContextVars. The thread itself is what shows it
-- happened: the next task to start runs on it (coroutine.running()).

local support = require "tests.support"
local sleep, create_task = asyncio.sleep, asyncio.create_task
local raises = support.raises

after_each(support.expect_no_tasks_left)

local function closer(fn) return setmetatable({}, { __close = fn or function() end }) end

-- Starts the bodies as tasks in one batch and returns the tasks and the thread each body
-- ran on (its first step: before its last await).
local function start_all(...)
  local threads, tasks = {}, {}
  for i, body in ipairs({ ... }) do
    tasks[i] = create_task(function()
      threads[i] = coroutine.running()
      return body()
    end)
  end
  await(sleep(0)) -- every first step runs
  return tasks, threads
end

describe("a tail await of a sleep", function()
  it("gives the thread to the next task to start (keyword and call forms)", function()
    local tasks, threads = start_all(
      function() await asyncio.sleep(0.3) end,
      function() await(asyncio.sleep(0.3)) end,
      function() return await asyncio.sleep(0.3) end,
      function() await asyncio.sleep(0.3) end)
    assert.are.equal(threads[1], threads[2])
    assert.are.equal(threads[2], threads[3])
    assert.are.equal(threads[3], threads[4])
    for _, t in ipairs(tasks) do assert.is_false(t:done()) end
    await(asyncio.gather(table.unpack(tasks)))
  end)

  it("keeps the thread where the body goes on, or a <close> variable must close after it", function()
    local closed = false
    local tasks, threads = start_all(
      function() await asyncio.sleep(0.01) return 1 end,
      function() local r = await asyncio.sleep(0.01, "r") return r end,
      function()
        local c <close> = closer(function() closed = true end)
        await asyncio.sleep(0.3)
      end,
      function() return await asyncio.sleep(0.01, "a", "b") end,
      function() await asyncio.sleep(0.01) end)
    for i = 1, 4 do
      for j = i + 1, 5 do assert.are_not.equal(threads[i], threads[j]) end
    end
    assert.is_false(closed) -- not before the sleep
    assert.are.same({ 1 }, { await(tasks[1]) })
    assert.are.same({ "r" }, { await(tasks[2]) })
    await(tasks[3])
    assert.is_true(closed)
    assert.are.same({ "a", "b" }, { await(tasks[4]) })
    await(tasks[5])
  end)

  it("ends the task with no results, never before the delay", function()
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    local tasks = start_all(
      function() await asyncio.sleep(0.05) end,
      function() return await asyncio.sleep(0.05) end,
      function() await asyncio.sleep(0.05, "dropped") end)
    for _, t in ipairs(tasks) do
      assert.are.equal(0, select("#", await(t)))
      assert.is_true(t:done())
      assert.is_false(t:cancelled())
      assert.are.equal(0, select("#", t:result()))
    end
    assert.is_true(loop:time() - t0 >= 0.05)
  end)

  it("drops the values of a sleep given many, as a statement does (both forms)", function()
    local many = {}
    for i = 1, 200 do many[i] = i end
    local tasks, threads = start_all(
      function() await asyncio.sleep(0.01, table.unpack(many)) end,
      function() await(asyncio.sleep(0.01, table.unpack(many))) end,
      function() await asyncio.sleep(0.01) end)
    assert.are.equal(threads[1], threads[3])
    for _, t in ipairs(tasks) do assert.are.equal(0, select("#", await(t))) end
  end)

  it("works in a main chunk (a vararg function) and in a function the body tail-called", function()
    local chunk = assert(load("await asyncio.sleep(0.01)"))
    local function last() await asyncio.sleep(0.01) end
    local tasks, threads = start_all(chunk, function() return last() end,
      function() await asyncio.sleep(0.01) end)
    assert.are.equal(threads[1], threads[2])
    assert.are.equal(threads[2], threads[3])
    await(asyncio.gather(table.unpack(tasks)))
  end)

  it("leaves closures over the body's locals working after the thread moved on", function()
    local get, set
    local tasks, threads = start_all(function()
      local a, b = 10, { n = 20 }
      get = function() return a, b.n end
      set = function(x) a = x end
      await asyncio.sleep(0.02)
    end, function()
      -- the next task on the same thread: its locals take the same stack slots
      local x, y, z = "x", "y", "z"
      assert(x .. y .. z == "xyz")
      await asyncio.sleep(0.02)
    end)
    assert.are.equal(threads[1], threads[2])
    assert.are.same({ 10, 20 }, { get() })
    set(11)
    assert.are.same({ 11, 20 }, { get() })
    await(asyncio.gather(table.unpack(tasks)))
    assert.are.same({ 11, 20 }, { get() })
  end)

  it("cancelled while it sleeps, ends cancelled with the message", function()
    local tasks = start_all(function() await asyncio.sleep(10) end,
      function() return await asyncio.sleep(10) end,
      function() await asyncio.sleep(10) end)
    assert.is_true(tasks[1]:cancel("bye"))
    assert.is_true(tasks[2]:cancel())
    assert.is_true(tasks[3]:cancel(42))
    local err = raises(function() return await(tasks[1]) end)
    assert.is_true(asyncio.CancelledError:is(err))
    assert.are.equal("bye", err.message)
    assert.is_true(tasks[1]:cancelled())
    err = raises(function() return await(tasks[2]) end)
    assert.is_true(asyncio.CancelledError:is(err))
    assert.are.equal("", err.message)
    err = raises(function() return await(tasks[3]) end)
    assert.are.equal("42", err.message)
    assert.is_false(tasks[1]:cancel()) -- done
  end)

  it("cancelled through a task awaiting it, both end cancelled", function()
    local inner = start_all(function() await asyncio.sleep(10) end)[1]
    local outer = create_task(function() return await(inner) end)
    await(sleep(0))
    outer:cancel("down")
    local err = raises(function() return await(outer) end)
    assert.are.equal("down", err.message)
    assert.is_true(inner:cancelled())
    err = raises(function() return inner:result() end)
    assert.are.equal("down", err.message)
  end)

  it("cancelled and uncancelled before it runs, behaves as an awaited sleep did", function()
    local t = start_all(function() await asyncio.sleep(10) end)[1]
    t:cancel("no")
    assert.are.equal(0, t:uncancel())
    -- as before: the sleep's step runs (woken by cancel), the cancellation is gone
    await(sleep(0))
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
  end)

  it("is shown by print_tasks and get_stack where the task waits, as before", function()
    -- the same function, once as a tail await and once kept by its <close> variable
    local function body(keep)
      local c <close> = keep and closer() or nil
      await asyncio.sleep(10)
    end
    local line = debug.getinfo(body, "S").linedefined + 2
    -- (kept first: a tail await hands its thread to the next task)
    local tasks, threads = start_all(function() return body(true) end,
      function() return body(false) end, function() return body(false) end)
    assert.are_not.equal(threads[1], threads[2])
    assert.are.equal(threads[2], threads[3])
    tasks = { tasks[2], tasks[1], tasks[3] } -- the tail await first, as below
    local tail, kept = tasks[1]:get_stack(), tasks[2]:get_stack()
    assert.are.same(kept, tail)
    assert.are.equal(1, #tail)
    assert.are.equal(line, tail[1].line)
    assert.is_truthy(tail[1].source:find("core_tail_spec.lua", 1, true))
    assert.are.same({}, tasks[1]:get_stack(0))
    local out = {}
    asyncio.print_tasks({ write = function(_, ...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end })
    local text = table.concat(out)
    local function entry(t) -- the first line of its stack
      local at = assert(text:find("Task '" .. t:get_name() .. "':", 1, true))
      return text:match("\n  stack:\n([^\n]*)", at)
    end
    assert.is_truthy(text:find("Task '" .. tasks[1]:get_name() .. "': sleeping", 1, true))
    assert.are.equal(entry(tasks[2]), entry(tasks[1]))
    assert.is_truthy(entry(tasks[1]):find(":" .. line .. ":", 1, true))
    local all = asyncio.all_tasks()
    local found = false
    for _, t in ipairs(all) do found = found or t == tasks[1] end
    assert.is_true(found)
    for _, t in ipairs(tasks) do t:cancel() end
    await(asyncio.gather(tasks[1], tasks[2], tasks[3], { return_exceptions = true }))
  end)

  it("shows each task's own line when bodies at different sites alternate", function()
    local function a() await asyncio.sleep(10) end
    local function b()
      local x = 1
      await asyncio.sleep(10 + x)
    end
    local la = debug.getinfo(a, "S").linedefined
    local lb = debug.getinfo(b, "S").linedefined + 2
    local tasks, threads = start_all(a, b, a, b, function() return b() end)
    assert.are.equal(threads[1], threads[5])
    local lines = {}
    for i, t in ipairs(tasks) do
      local frames = t:get_stack()
      assert.are.equal(1, #frames)
      lines[i] = frames[1].line
      t:cancel()
    end
    assert.are.same({ la, lb, la, lb, lb }, lines)
    tasks[#tasks + 1] = { return_exceptions = true }
    await(asyncio.gather(table.unpack(tasks)))
  end)

  it("leaves each task its own ContextVar context on the shared thread", function()
    local var = asyncio.ContextVar("tail_var", "default")
    local seen = {}
    local tasks, threads = start_all(function()
      var:set("first")
      seen[1] = var:get()
      await asyncio.sleep(0.01)
    end, function()
      seen[2] = var:get()
      var:set("second")
      await asyncio.sleep(0.01)
    end, function()
      seen[3] = var:get()
      await asyncio.sleep(0.01)
    end)
    assert.are.equal(threads[1], threads[3])
    assert.are.same({ "first", "default", "default" }, seen)
    await(asyncio.gather(table.unpack(tasks)))
    assert.are.equal("default", var:get())
  end)

  it("shows the await's line in a long body and after a long gap, none when stripped", function()
    -- over 128 instructions before the await, then a gap of 300 lines: Lua keeps absolute
    -- line entries for both, which the line's reading must use (tail.c, lua54_line)
    local src = { "local asyncio = ...\nreturn function(x)\n" }
    for _ = 1, 150 do src[#src + 1] = "  x = x * 3 + 1\n" end
    src[#src + 1] = "  if x == 0 then await asyncio.sleep(1) end\n"
    local near = 2 + 150 + 1
    src[#src + 1] = string.rep("\n", 300)
    src[#src + 1] = "  await asyncio.sleep(10)\nend\n"
    local far = near + 300 + 1
    local long = assert(load(table.concat(src), "=long_body"))(asyncio)
    local short = assert(load("local asyncio = ...\nreturn function() await asyncio.sleep(10) end",
      "=short_body"))(asyncio)
    local stripped = assert(load(string.dump(short, true), "=stripped", "b"))
    for i = 1, debug.getinfo(short, "u").nups do
      debug.setupvalue(stripped, i, select(2, debug.getupvalue(short, i)))
    end
    local tasks, threads = start_all(function() return long(1) end, short,
      function() return long(2) end, stripped, short)
    assert.are.equal(threads[1], threads[3])
    assert.are.same({ far, 2, far }, {
      tasks[1]:get_stack()[1].line, tasks[2]:get_stack()[1].line, tasks[3]:get_stack()[1].line })
    -- no line to keep: the stripped body keeps its thread, as before
    assert.are_not.equal(threads[4], threads[5])
    for _, t in ipairs(tasks) do t:cancel() end
    tasks[#tasks + 1] = { return_exceptions = true }
    await(asyncio.gather(table.unpack(tasks)))
  end)

  it("hands each task its own body, arguments and thread in a run of first steps", function()
    -- tasks made old by full collections before they start (generational: black), each
    -- with a closure of its own (new: white), so that the hand-over's stores take Lua's
    -- barrier as well as the raw path; arguments of every count, tables among them
    local weak = setmetatable({}, { __mode = "k" })
    local seen, tasks, results, line = {}, {}, {}, nil
    local old = collectgarbage("generational")
    for i = 1, 40 do
      local args = {}
      for j = 1, i % 11 do args[j] = j % 3 == 0 and { i, j } or i * 100 + j end
      for _, a in ipairs(args) do if type(a) == "table" then weak[a] = true end end
      local async function body(...)
        seen[i] = { n = select("#", ...), ... }
        if i % 2 == 0 then return i end
        line = debug.getinfo(1, "l").currentline + 1
        local function last() await asyncio.sleep(0.05 + 0.001 * (i % 5)) end
        return last() -- a closure made now: what the task keeps while it sleeps
      end
      tasks[i] = create_task(body(table.unpack(args)))
    end
    collectgarbage()
    collectgarbage()
    await(sleep(0))
    -- young collections: they traverse no old object but those a barrier marked touched
    collectgarbage("step", 0)
    collectgarbage("step", 0)
    for i = 1, 40, 2 do -- each sleeper's function kept through the collections
      assert.is_false(tasks[i]:done())
      assert.are.equal(line, tasks[i]:get_stack()[1].line)
    end
    collectgarbage()
    for i = 1, 40 do
      local n = i % 11
      assert.are.equal(n, seen[i].n)
      for j = 1, n do
        if j % 3 == 0 then
          assert.are.same({ i, j }, seen[i][j])
        else
          assert.are.equal(i * 100 + j, seen[i][j])
        end
      end
    end
    seen = nil
    collectgarbage()
    -- the tasks no longer hold their arguments (their slots cleared at the first step)
    assert.is_nil(next(weak))
    for i, t in ipairs(tasks) do results[i] = await(t) or 0 end
    collectgarbage(old)
    for i = 1, 40 do assert.are.equal(i % 2 == 0 and i or 0, results[i]) end
  end)

  it("is not made in debug mode, whose samples and reports need the thread", function()
    local loop = asyncio.get_running_loop()
    loop:set_debug(true)
    local ok, tasks, threads = pcall(start_all, function() await asyncio.sleep(0.01) end,
      function() await asyncio.sleep(0.01) end)
    loop:set_debug(false)
    assert(ok, tasks)
    assert.are_not.equal(threads[1], threads[2])
    await(asyncio.gather(table.unpack(tasks)))
  end)

  it("serves many sleepers on few threads, each ending after its own delay", function()
    local n, done = 2000, 0
    local order = {}
    local async function sleeper(i)
      order[#order + 1] = i
      await asyncio.sleep((i % 7) / 1000)
    end
    local tasks = {}
    for i = 1, n do
      tasks[i] = create_task(sleeper(i))
      tasks[i]:add_done_callback(function() done = done + 1 end)
    end
    await(asyncio.gather(table.unpack(tasks)))
    await(sleep(0))
    assert.are.equal(n, done)
    assert.are.equal(n, #order)
  end)
end)

describe("a tail await of a Future or a Task", function()
  it("gives the thread away and ends with the awaited values for `return await` only", function()
    local fut, fut2 = asyncio.Future(), asyncio.Future()
    local inner = create_task(function() await(sleep(0.01)) return "i", nil end)
    local tasks, threads = start_all(
      function() return await fut end,
      function() await fut end,
      function() return await(inner) end,
      function() return await(fut2) end)
    for i = 2, 4 do assert.are.equal(threads[1], threads[i]) end
    fut:set_result(1, nil, 3)
    fut2:set_result()
    local r = table.pack(await(tasks[1]))
    assert.are.same({ n = 3, 1, nil, 3 }, r)
    assert.are.equal(0, select("#", await(tasks[2])))
    assert.are.same({ n = 2, "i", nil }, table.pack(await(tasks[3])))
    assert.are.equal(0, select("#", await(tasks[4])))
  end)

  it("keeps the awaited future alive, which only it holds", function()
    local tasks = start_all(function()
      return await(asyncio.ensure_future(asyncio.sleep(0.05, "kept")))
    end)
    collectgarbage()
    collectgarbage()
    assert.are.equal("kept", await(tasks[1]))
  end)

  it("fails with the awaited error, the same value", function()
    local e = setmetatable({}, { __tostring = function() return "E" end })
    local fut = asyncio.Future()
    local inner = create_task(function() await(sleep(0.01)) error(e) end)
    local tasks = start_all(function() await fut end, function() return await inner end)
    fut:set_exception(e)
    assert.are.equal(e, raises(function() return await(tasks[1]) end))
    assert.are.equal(e, raises(function() return await(tasks[2]) end))
    assert.are.equal(e, tasks[2]:exception())
  end)

  it("reports a never-retrieved error as the thread would have, traceback included", function()
    local program = [[
      local async function inner() await asyncio.sleep(0.01); error("boom") end
      local function closer() return setmetatable({}, { __close = function() end }) end
      local function body(x, keep)
        local c <close> = keep and closer() or nil
        await x
      end
      local function last(x) return await x end
      local threads = {}
      local function start(i, fn)
        return asyncio.create_task(function() threads[i] = coroutine.running() return fn() end)
      end
      local fut = asyncio.Future()
      start(1, function() return body(asyncio.create_task(inner()), KEEP) end)
      start(2, function() return last(fut) end)
      start(3, function() end)
      await asyncio.sleep(0)
      print("shared", threads[1] == threads[3])
      fut:set_exception("plain")
      await asyncio.sleep(0.05)
      collectgarbage() collectgarbage()
      await asyncio.sleep(0.01)
    ]]
    local function run(keep) -- the program's file name (a temporary one) made the same
      return (support.run_alua(("KEEP = %s\n"):format(keep) .. program):gsub("/tmp/lua_%w+", "FILE"))
    end
    -- the reports in a fixed order: which dead task the collector finalizes first varies
    local function sorted_reports(out)
      local reports, marker = {}, "Task exception was never retrieved"
      local at = out:find(marker, 1, true)
      while at do
        local next_at = out:find(marker, at + 1, true)
        reports[#reports + 1] = out:sub(at, (next_at or #out + 1) - 1)
        at = next_at
      end
      table.sort(reports)
      return table.concat(reports)
    end
    local tail, kept = run(false), run(true)
    assert.is_truthy(tail:find("shared\ttrue", 1, true), tail)
    assert.is_truthy(kept:find("shared\tfalse", 1, true), kept)
    assert.are.equal(sorted_reports(kept), sorted_reports(tail))
    assert.is_truthy(tail:find("raised in an awaited task", 1, true), tail)
    assert.is_truthy(tail:find("(...tail calls...)", 1, true), tail)
    local _, reports = tail:gsub("Task exception was never retrieved", "")
    assert.are.equal(2, reports)
  end)

  it("cancelled, cancels what it awaits and ends cancelled with the message", function()
    local fut = asyncio.Future()
    local inner = create_task(function() await(sleep(10)) end)
    local tasks = start_all(function() await fut end, function() return await inner end)
    tasks[1]:cancel("one")
    tasks[2]:cancel("two")
    local err = raises(function() return await(tasks[1]) end)
    assert.are.equal("one", err.message)
    assert.is_true(fut:cancelled())
    err = raises(function() return await(tasks[2]) end)
    assert.are.equal("two", err.message)
    assert.is_true(inner:cancelled())
  end)

  it("ends as the awaited task does when that one ignores the cancellation", function()
    local inner = create_task(function()
      local ok = pcall(function() await(sleep(10)) end)
      return ok and "slept" or "survived"
    end)
    local outer = start_all(function() return await inner end)[1]
    outer:cancel("go")
    assert.are.equal("survived", await(outer))
    assert.is_false(outer:cancelled())
  end)

  it("ends cancelled when the future is cancelled, or fails with a CancelledError", function()
    local a, b = asyncio.Future(), asyncio.Future()
    local tasks = start_all(function() await a end, function() return await b end)
    a:cancel("from a")
    b:set_exception(asyncio.CancelledError("from b"))
    local err = raises(function() return await(tasks[1]) end)
    assert.are.equal("from a", err.message)
    assert.is_true(tasks[1]:cancelled())
    err = raises(function() return await(tasks[2]) end)
    assert.are.equal("from b", err.message)
    assert.is_true(tasks[2]:cancelled())
  end)

  it("is shown by print_tasks waiting on what it awaits, with the same stack", function()
    local function closer() return setmetatable({}, { __close = function() end }) end
    local inner = create_task(function() await(sleep(10)) end)
    local function body(keep)
      local c <close> = keep and closer() or nil
      await inner
    end
    local tasks, threads = start_all(function() return body(true) end,
      function() return body(false) end, function() end)
    assert.are_not.equal(threads[1], threads[2])
    assert.are.equal(threads[2], threads[3])
    assert.are.same(tasks[1]:get_stack(), tasks[2]:get_stack())
    local out = {}
    asyncio.print_tasks({ write = function(_, ...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end })
    local text = table.concat(out)
    local function entry(t)
      local at = assert(text:find("Task '" .. t:get_name() .. "':", 1, true))
      return text:match("\n  waits on: ([^\n]*)", at), text:match("\n  stack:\n([^\n]*)", at)
    end
    local w1, s1 = entry(tasks[1])
    local w2, s2 = entry(tasks[2])
    assert.are.equal("Task '" .. inner:get_name() .. "'", w2)
    assert.are.equal(w1, w2)
    assert.are.equal(s1, s2)
    inner:cancel()
    await(asyncio.gather(tasks[1], tasks[2], { return_exceptions = true }))
  end)
end)
