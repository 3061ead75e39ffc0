-- taskgroups_spec.lua — TaskGroup scopes (<close>) and asyncio.task_group(fn).
-- Ports the behaviours of CPython's test_taskgroups.py (named in each description);
-- durations are scaled down tenfold.

local support = require "tests.support"
local sleep, create_task, current_task = asyncio.sleep, asyncio.create_task, asyncio.current_task
local TaskGroup, CancelledError, ExceptionGroup = asyncio.TaskGroup, asyncio.CancelledError, asyncio.ExceptionGroup

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local function in_task(fn)
  return function() return await(create_task(fn)) end
end

local raises = support.raises

local function cancelled_error(fn, ...)
  local err = raises(fn, ...)
  assert.is_true(CancelledError:is(err), "expected a CancelledError, got " .. tostring(err))
  return err
end

-- the set of error kinds in an ExceptionGroup: strings as they are, instances by type
local function error_types(eg)
  assert.is_true(ExceptionGroup:is(eg), "expected an ExceptionGroup, got " .. tostring(eg))
  local set = {}
  for _, e in ipairs(eg.errors) do set[type(e) == "table" and e.type or e] = true end
  return set
end

local function group_error(fn, ...)
  local err = raises(fn, ...)
  error_types(err)
  return err
end

local function crash_after(t, what)
  return async(function()
    await(sleep(t))
    error(what or "ZeroDivisionError", 0)
  end)()
end

local function result_after(t, v)
  return async(function()
    await(sleep(t))
    return v
  end)()
end

describe("TaskGroup", function()
  it("test_taskgroup_01: closing waits for every child", in_task(function()
    local t1, t2
    do
      local g <close> = TaskGroup()
      t1 = g:create_task(result_after(0.01, 42))
      t2 = g:create_task(result_after(0.02, 11))
    end
    assert.are.equal(42, t1:result())
    assert.are.equal(11, t2:result())
  end))

  it("test_taskgroup_02: children may be added while the body runs", in_task(function()
    local t1, t2
    do
      local g <close> = TaskGroup()
      t1 = g:create_task(result_after(0.01, 42))
      await(sleep(0.015))
      t2 = g:create_task(result_after(0.02, 11))
    end
    assert.are.equal(42, t1:result())
    assert.are.equal(11, t2:result())
  end))

  it("test_taskgroup_03: a child cancelled explicitly does not fail the group", in_task(function()
    local t1, t2
    do
      local g <close> = TaskGroup()
      t1 = g:create_task(result_after(0.1, 42))
      await(sleep(0.015))
      t1:cancel()
      t2 = g:create_task(result_after(0.02, 11))
    end
    assert.is_true(t1:cancelled())
    assert.are.equal(11, t2:result())
  end))

  it("test_taskgroup_04: a failing child cancels its siblings; the scope raises ExceptionGroup", in_task(function()
    local NUM, t2_cancel, t2 = 0, false, nil
    local function foo2()
      local ok, err = pcall(await, sleep(0.1))
      if not ok then
        t2_cancel = CancelledError:is(err)
        error(err, 0)
      end
      NUM = NUM + 1
    end
    local function runner()
      do
        local g <close> = TaskGroup()
        g:create_task(crash_after(0.01))
        t2 = g:create_task(foo2)
      end
      NUM = NUM + 10
    end
    local eg = group_error(await, create_task(runner))
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.are.equal(0, NUM)
    assert.is_true(t2_cancel)
    assert.is_true(t2:cancelled())
  end))

  it("test_cancel_children_on_child_error: the body's await is cancelled too", in_task(function()
    local NUM, t2_cancel, runner_cancel = 0, false, false
    local function foo2()
      local ok, err = pcall(await, sleep(0.5))
      if not ok then
        t2_cancel = true
        error(err, 0)
      end
      NUM = NUM + 1
    end
    local function runner()
      do
        local g <close> = TaskGroup()
        for _ = 1, 3 do g:create_task(crash_after(0.01)) end
        g:create_task(foo2)
        local ok, err = pcall(await, sleep(1))
        if not ok then
          runner_cancel = CancelledError:is(err)
          error(err, 0)
        end
      end
      NUM = NUM + 10
    end
    local eg = group_error(await, create_task(runner))
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.are.equal(3, #eg.errors, "every failure is listed")
    assert.are.equal(0, NUM)
    assert.is_true(t2_cancel)
    assert.is_true(runner_cancel)
  end))

  it("test_cancellation: cancelling the parent cancels the children; the scope re-raises CancelledError", in_task(function()
    local NUM = 0
    local function foo()
      local ok, err = pcall(await, sleep(0.5))
      if not ok then
        NUM = NUM + 1
        error(err, 0)
      end
    end
    local r = create_task(function()
      local g <close> = TaskGroup()
      for _ = 1, 5 do g:create_task(foo) end
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    cancelled_error(await, r)
    assert.is_true(r:cancelled())
    assert.are.equal(5, NUM)
  end))

  it("test_taskgroup_07: the body's own await is cancelled with the children", in_task(function()
    local NUM = 0
    local function foo()
      local ok, err = pcall(await, sleep(0.5))
      if not ok then
        NUM = NUM + 1
        error(err, 0)
      end
    end
    local r = create_task(function()
      local g <close> = TaskGroup()
      for _ = 1, 5 do g:create_task(foo) end
      local ok, err = pcall(await, sleep(1))
      if not ok then
        NUM = NUM + 10
        error(err, 0)
      end
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    cancelled_error(await, r)
    assert.are.equal(15, NUM)
  end))

  -- children that fail while being cancelled: try: sleep(10) finally: 1/0
  local function fail_on_cancel()
    pcall(await, sleep(1))
    error("ZeroDivisionError", 0)
  end

  it("test_taskgroup_08: children failing as the parent's cancellation reaches them: a group", in_task(function()
    local r = create_task(function()
      local g <close> = TaskGroup()
      for _ = 1, 5 do g:create_task(fail_on_cancel) end
      await(sleep(1))
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.are.equal(5, #eg.errors)
  end))

  it("test_taskgroup_09: an error in the body after an await cancels the children", in_task(function()
    local t1, t2
    local eg = group_error(function()
      local g <close> = TaskGroup()
      t1 = g:create_task(result_after(0.1, 42))
      t2 = g:create_task(result_after(0.2, 11))
      await(sleep(0.01))
      error("ZeroDivisionError", 0)
    end)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.is_true(t1:cancelled())
    assert.is_true(t2:cancelled())
  end))

  it("test_taskgroup_10: an error in the body before any await cancels the children", in_task(function()
    local t1, t2
    local eg = group_error(function()
      local g <close> = TaskGroup()
      t1 = g:create_task(result_after(0.1, 42))
      t2 = g:create_task(result_after(0.2, 11))
      error("ZeroDivisionError", 0)
    end)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.is_true(t1:cancelled())
    assert.is_true(t2:cancelled())
  end))

  it("test_taskgroup_11: nested groups, outer cancellation, inner children fail", in_task(function()
    local r = create_task(function()
      local _ <close> = TaskGroup()
      local g2 <close> = TaskGroup()
      for _ = 1, 5 do g2:create_task(fail_on_cancel) end
      await(sleep(1))
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ ExceptionGroup = true }, error_types(eg))
    assert.are.same({ ZeroDivisionError = true }, error_types(eg.errors[1]))
  end))

  it("test_taskgroup_12: the same with a child in the outer group too", in_task(function()
    local r = create_task(function()
      local g1 <close> = TaskGroup()
      local other = g1:create_task(function() await(sleep(1)) end)
      local g2 <close> = TaskGroup()
      for _ = 1, 5 do g2:create_task(fail_on_cancel) end
      await(sleep(1))
      return other
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ ExceptionGroup = true }, error_types(eg))
    assert.are.same({ ZeroDivisionError = true }, error_types(eg.errors[1]))
  end))

  it("test_taskgroup_13: the outer group's failure cancels the inner group", in_task(function()
    local eg = group_error(await, create_task(function()
      local g1 <close> = TaskGroup()
      g1:create_task(crash_after(0.01, "ValueError"))
      local g2 <close> = TaskGroup()
      g2:create_task(crash_after(1, "ValueError"))
    end))
    assert.are.same({ ValueError = true }, error_types(eg))
    assert.are.equal(1, #eg.errors)
  end))

  it("test_taskgroup_14: the inner group's failure reaches the outer one as an ExceptionGroup", in_task(function()
    local eg = group_error(await, create_task(function()
      local g1 <close> = TaskGroup()
      g1:create_task(crash_after(1, "ValueError"))
      local g2 <close> = TaskGroup()
      g2:create_task(crash_after(0.01, "ValueError"))
    end))
    assert.are.same({ ExceptionGroup = true }, error_types(eg))
    assert.are.same({ ValueError = true }, error_types(eg.errors[1]))
  end))

  it("test_taskgroup_15: a child failing while the cancelled body awaits: the group wins", in_task(function()
    local r = create_task(function()
      local g1 <close> = TaskGroup()
      g1:create_task(crash_after(0.03))
      local ok, err = pcall(await, sleep(1))
      if not ok then
        await(sleep(0.05))
        error(err, 0)
      end
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
  end))

  it("test_taskgroup_16: the same inside a task the cancelled one awaits", in_task(function()
    local nested_runner = function()
      local g1 <close> = TaskGroup()
      g1:create_task(crash_after(0.03))
      local ok, err = pcall(await, sleep(1))
      if not ok then
        await(sleep(0.05))
        error(err, 0)
      end
    end
    local r = create_task(function() await(create_task(nested_runner)) end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
  end))

  it("test_taskgroup_17: an empty group's body cancelled: CancelledError", in_task(function()
    local NUM = 0
    local r = create_task(function()
      local _ <close> = TaskGroup()
      local ok, err = pcall(await, sleep(1))
      if not ok then
        NUM = NUM + 10
        error(err, 0)
      end
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    cancelled_error(await, r)
    assert.are.equal(10, NUM)
  end))

  it("test_taskgroup_18: a body that turns its cancellation into an error raises a group", in_task(function()
    local NUM = 0
    local r = create_task(function()
      local _ <close> = TaskGroup()
      local ok = pcall(await, sleep(1))
      if not ok then
        NUM = NUM + 10
        error("MyExc", 0)
      end
    end)
    await(sleep(0.01))
    assert.is_false(r:done())
    r:cancel()
    local eg = group_error(await, r)
    assert.are.same({ MyExc = true }, error_types(eg))
    assert.are.equal(10, NUM)
  end))

  it("test_taskgroup_19: the body's error and the child's are both listed", in_task(function()
    local eg = group_error(await, create_task(function()
      local g <close> = TaskGroup()
      g:create_task(crash_after(0.01))
      pcall(await, sleep(1))
      error("MyExc", 0)
    end))
    assert.are.same({ MyExc = true, ZeroDivisionError = true }, error_types(eg))
  end))

  it("test_taskgroup_22: cancelling the parent before the children finish", in_task(function()
    local r = create_task(function()
      local g <close> = TaskGroup()
      g:create_task(result_after(0.1, 42))
      g:create_task(result_after(0.2, 11))
    end)
    await(sleep(0.005))
    r:cancel()
    cancelled_error(await, r)
  end))

  it("test_taskgroup_23: finished children leave the group", in_task(function()
    local g <close> = TaskGroup()
    for count = 0, 9 do
      await(sleep(0.01))
      g:create_task(function() await(sleep(0.03)) end)
      if count == 5 then assert.is_true(g._ntasks < 5) end
    end
    await(sleep(0.135))
    assert.are.equal(0, g._ntasks)
  end))

  it("test_taskgroup_24: children may create children while the scope closes", in_task(function()
    local done = 0
    local function coro1(delay)
      await(sleep(delay))
      done = done + 1
    end
    do
      local g <close> = TaskGroup()
      g:create_task(function()
        await(sleep(0.01))
        g:create_task(function() coro1(0.01) end)
        g:create_task(function() coro1(0.02) end)
      end)
    end
    assert.are.equal(2, done)
  end))

  it("test_taskgroup_25: a growing group is stopped by one failure", in_task(function()
    local nhydras = 0
    local eg = group_error(function()
      local g <close> = TaskGroup()
      local function hydra()
        nhydras = nhydras + 1
        await(sleep(0.001))
        g:create_task(hydra)
        g:create_task(hydra)
      end
      g:create_task(hydra)
      g:create_task(function()
        while nhydras < 10 do await(sleep(0.0015)) end
        error("ZeroDivisionError", 0)
      end)
    end)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.is_true(nhydras >= 10)
  end))

  it("test_taskgroup_task_name / test_name: create_task(aw, name)", in_task(function()
    local name
    local t, f
    do
      local g <close> = TaskGroup()
      t = g:create_task(async(function() name = current_task():get_name() end)(), "yolo")
      f = g:create_task(function() end, "from a function")
      assert.are.equal("yolo", t:get_name())
    end
    assert.are.equal("yolo", name)
    assert.are.equal("from a function", f:get_name())
  end))

  it("test_taskgroup_no_create_task_after_failure: a shutting-down group refuses tasks", in_task(function()
    local refused
    local eg = group_error(function()
      local g <close> = TaskGroup()
      g:create_task(crash_after(0.001))
      g:create_task(function()
        local ok = pcall(await, sleep(1))
        if not ok then refused = raises(g.create_task, g, crash_after(0.001)) end
      end)
    end)
    assert.are.same({ ZeroDivisionError = true }, error_types(eg))
    assert.matches("TaskGroup:create_task: the task group is shutting down", tostring(refused))
  end))

  it("test_taskgroup_context_manager_exit_raises: an inner scope's error on the way out is listed", in_task(function()
    local task = current_task()
    local database = setmetatable({}, { __close = function() error("CustomException", 0) end })
    local eg = group_error(function()
      local tg <close> = TaskGroup()
      local _ <close> = database
      tg:create_task(function() error("CustomException", 0) end)
      await(sleep(1))
    end)
    assert.are.equal(0, task:cancelling())
    assert.are.equal(2, #eg.errors)
    assert.are.same({ CustomException = true }, error_types(eg))
  end))

  it("test_taskgroup_finished / test_coro_closed_when_tg_closed: a closed group refuses tasks", in_task(function()
    local tg
    do
      tg = TaskGroup()
      local _ <close> = tg
    end
    local err = raises(tg.create_task, tg, sleep(0))
    assert.matches("TaskGroup:create_task: the task group is finished", tostring(err))
    local coro = async(function() end)()
    raises(tg.create_task, tg, coro)
    assert.matches("already awaited", tostring(raises(await, coro)), "the refused coroutine was consumed")
  end))

  it("outside every task (test_taskgroup_without_parent_task) the top level is the parent", function()
    local done = {}
    do
      local tg <close> = TaskGroup()
      tg:create_task(function() await(asyncio.sleep(0.01)) done[#done + 1] = "child" end)
    end
    assert.are.same({ "child" }, done)
  end)

  it("test_cancelling_level_preserved: a group that cancelled its parent undoes it", in_task(function()
    group_error(function()
      local tg <close> = TaskGroup()
      tg:create_task(crash_after(0, "RuntimeError"))
    end)
    assert.are.equal(0, current_task():cancelling())
  end))

  it("test_nested_groups_both_cancelled: each group undoes its own cancellation", in_task(function()
    local inner_level
    local eg = group_error(function()
      local outer_tg <close> = TaskGroup()
      local inner = group_error(function()
        local inner_tg <close> = TaskGroup()
        inner_tg:create_task(crash_after(0, "RuntimeError"))
        outer_tg:create_task(crash_after(0, "ValueError"))
      end)
      assert.are.same({ RuntimeError = true }, error_types(inner))
      inner_level = current_task():cancelling()
    end)
    assert.are.same({ ValueError = true }, error_types(eg))
    assert.are.equal(1, inner_level)
    assert.are.equal(0, current_task():cancelling())
  end))

  it("test_error_and_cancel: an outside cancellation swallowed by the group's error is kept", in_task(function()
    local event = asyncio.Event()
    local levels = {}
    local after_group_ran = false
    local t = create_task(function()
      group_error(function()
        local tg <close> = TaskGroup()
        tg:create_task(function()
          event:set()
          await(sleep(0))
          error("RuntimeError", 0)
        end)
        await(sleep(1))
        error("sleep in group should have been cancelled")
      end)
      levels[1] = current_task():cancelling()
      await(sleep(1))
      after_group_ran = true
    end)
    await(event:wait())
    assert.are.equal(0, t:cancelling())
    t:cancel()
    assert.are.equal(1, t:cancelling())
    cancelled_error(await, t)
    assert.is_true(t:cancelled())
    assert.are.equal(1, levels[1])
    assert.is_false(after_group_ran, "the sleep after the group should have been cancelled")
  end))

  it("test_cancels_task_if_created_during_creation: a sibling created by a child is cancelled", in_task(function()
    local ran = false
    local eg = group_error(function()
      local tg <close> = TaskGroup()
      tg:create_task(function()
        tg:create_task(function() error("MyError", 0) end)
        cancelled_error(function()
          await(sleep(0))
          await(sleep(0))
        end)
        ran = true
      end)
    end)
    assert.is_true(ran)
    assert.are.same({ MyError = true }, error_types(eg))
  end))

  it("test_cancellation_does_not_leak_out_of_tg", in_task(function()
    group_error(function()
      local tg <close> = TaskGroup()
      tg:create_task(function() error("MyError", 0) end)
    end)
    await(sleep(0))
    assert.are.equal(0, current_task():cancelling())
  end))

  it("errors keep their values: tables and error instances pass through unchanged", in_task(function()
    local mine = { code = 7 }
    local eg = group_error(function()
      local tg <close> = TaskGroup()
      tg:create_task(function() error(mine) end)
      tg:create_task(function() error(asyncio.QueueEmpty("empty")) end)
    end)
    assert.are.equal(2, #eg.errors)
    assert.are.equal(mine, eg.errors[1])
    assert.is_true(asyncio.QueueEmpty:is(eg.errors[2]))
    assert.matches("^ExceptionGroup: unhandled errors in a TaskGroup", tostring(eg))
  end))

  it("create_task rejects what is not awaitable; tostring shows the state", in_task(function()
    local tg <close> = TaskGroup()
    raises(tg.create_task, tg, 42)
    assert.matches("TaskGroup:create_task: call it as tg:create_task%(%)", tostring(raises(tg.create_task, nil, sleep(0))))
    tg:create_task(sleep(0.001)) -- an awaitable runs as a task awaiting it
    tg:create_task(function() await(sleep(0.001)) end)
    assert.matches("^TaskGroup %[entered, tasks=2, errors=0%]$", tostring(tg))
  end))
end)

describe("asyncio.task_group(fn)", function()
  it("runs fn(tg) in a scope and returns fn's results once the children are done", in_task(function()
    local child
    local a, b = await(asyncio.task_group(function(tg)
      child = tg:create_task(result_after(0.01, "child"))
      return 1, 2
    end))
    assert.are.equal(1, a)
    assert.are.equal(2, b)
    assert.are.equal("child", child:result())
  end))

  it("accepts an async function and awaits it", in_task(function()
    local r = await(asyncio.task_group(async(function(tg)
      local t = tg:create_task(result_after(0.001, 5))
      return await(t) * 2
    end)))
    assert.are.equal(10, r)
  end))

  it("raises the ExceptionGroup of the failures", in_task(function()
    local eg = group_error(await, asyncio.task_group(function(tg)
      tg:create_task(crash_after(0.001, "boom"))
      await(sleep(1))
    end))
    assert.are.same({ boom = true }, error_types(eg))
  end))

  it("works at top level (the awaited coroutine runs as the main task)", function()
    local r = await(asyncio.task_group(function(tg)
      return await(tg:create_task(result_after(0.001, "top")))
    end))
    assert.are.equal("top", r)
  end)

  it("rejects a non-function", function()
    assert.matches("task_group: expected a function, got number", tostring(raises(asyncio.task_group, 1)))
  end)
end)
