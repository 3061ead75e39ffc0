-- locks_spec.lua — Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier.
-- Ports the behaviours of CPython's test_locks.py (named in each description).

local support = require "tests.support"
local sleep, create_task, Future = asyncio.sleep, asyncio.create_task, asyncio.Future
local Lock, Event, Condition = asyncio.Lock, asyncio.Event, asyncio.Condition
local Semaphore, BoundedSemaphore, Barrier = asyncio.Semaphore, asyncio.BoundedSemaphore, asyncio.Barrier
local CancelledError = asyncio.CancelledError

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local in_task = support.in_task -- it(...) bodies that need a current task

local tick = support.tick

local raises = support.raises

local function cancelled_error(fn, ...)
  local err = raises(fn, ...)
  assert.is_true(CancelledError:is(err), "expected a CancelledError, got " .. tostring(err))
  return err
end

local function broken_barrier(err)
  return asyncio.InvalidStateError:is(err) and err.broken_barrier == true
end

describe("Lock", function()
  it("test_repr: tostring shows the state", in_task(function()
    local lock = Lock()
    assert.matches("%[unlocked%]", tostring(lock))
    await(lock:acquire())
    assert.matches("%[locked%]", tostring(lock))
    create_task(lock:acquire())
    tick()
    assert.matches("%[locked, waiters:1%]", tostring(lock))
    lock:release()
    tick()
    lock:release()
  end))

  it("test_lock: a Lock is not itself awaitable", in_task(function()
    local lock = Lock()
    assert.matches("expected a coroutine object, Task or Future", tostring(raises(await, lock)))
    assert.is_false(lock:locked())
  end))

  it("test_acquire: waiters take the lock in FIFO order; acquire returns the lock", in_task(function()
    local lock = Lock()
    local result = {}
    assert.are.equal(lock, await(lock:acquire()))
    local function c(n)
      return function()
        local l = await(lock:acquire())
        if l == lock then result[#result + 1] = n end
        return true
      end
    end
    local t1, t2 = create_task(c(1)), create_task(c(2))
    tick()
    assert.are.same({}, result)
    lock:release()
    tick()
    assert.are.same({ 1 }, result)
    tick()
    assert.are.same({ 1 }, result)
    local t3 = create_task(c(3))
    lock:release()
    tick()
    assert.are.same({ 1, 2 }, result)
    lock:release()
    tick()
    assert.are.same({ 1, 2, 3 }, result)
    for _, t in ipairs { t1, t2, t3 } do
      assert.is_true(t:done())
      assert.is_true(t:result())
    end
    lock:release()
  end))

  it("test_acquire_cancel: a cancelled waiter does not take the lock", in_task(function()
    local lock = Lock()
    await(lock:acquire())
    local task = create_task(lock:acquire())
    asyncio.get_running_loop():call_soon(function() task:cancel() end)
    cancelled_error(await, task)
    assert.matches("%[locked%]", tostring(lock)) -- no waiter left behind
    lock:release()
    assert.is_false(lock:locked())
  end))

  it("test_cancel_race: a waiter cancelled as the lock is released lets the next one in", in_task(function()
    local lock = Lock()
    local function lockit(blocker)
      return function()
        await(lock:acquire())
        local ok, err = pcall(function() if blocker then await(blocker) end end)
        lock:release()
        if not ok then error(err, 0) end
      end
    end
    local fa = Future()
    local ta = create_task(lockit(fa))
    tick()
    assert.is_true(lock:locked())
    local tb = create_task(lockit(nil))
    tick()
    assert.matches("waiters:1", tostring(lock))
    local tc = create_task(lockit(nil))
    tick()
    assert.matches("waiters:2", tostring(lock))
    fa:set_result(nil)
    tb:cancel()
    tick()
    assert.is_false(lock:locked())
    assert.is_true(ta:done())
    assert.is_true(tb:cancelled())
    await(tc)
    assert.is_true(tc:done() and not tc:cancelled())
  end))

  it("test_cancel_release_race: cancel + release together let exactly one waiter in", in_task(function()
    local lock = Lock()
    local lock_count, call_count = 0, 0
    local function lockit()
      call_count = call_count + 1
      await(lock:acquire())
      lock_count = lock_count + 1
    end
    await(lock:acquire())
    local t1, t2, t3 = create_task(lockit), create_task(lockit), create_task(lockit)
    tick()
    asyncio.get_running_loop():call_soon(function()
      t1:cancel()
      lock:release()
    end)
    cancelled_error(await, t1)
    assert.are.equal(1, lock_count)
    assert.are.equal(3, call_count)
    assert.is_true(t1:cancelled() and t2:done())
    t3:cancel()
    tick()
    assert.is_true(t3:cancelled())
  end))

  it("test_finished_waiter_cancelled: a woken waiter cancelled before it runs passes the lock on", in_task(function()
    local lock = Lock()
    await(lock:acquire())
    assert.is_true(lock:locked())
    local tb = create_task(lock:acquire())
    tick()
    assert.matches("waiters:1", tostring(lock))
    local tc = create_task(lock:acquire())
    tb:cancel()
    lock:release()
    tick()
    assert.is_true(lock:locked())
    assert.is_true(tb:cancelled())
    assert.are.equal(lock, await(tc))
    lock:release()
  end))

  it("test_release_not_acquired: releasing an unlocked Lock is an error naming the call", function()
    local lock = Lock()
    assert.matches("Lock:release: the lock is not acquired", tostring(raises(lock.release, lock)))
    assert.matches("Lock:release: call it as lock:release%(%)", tostring(raises(lock.release)))
  end)

  it("test_release_no_waiters", in_task(function()
    local lock = Lock()
    await(lock:acquire())
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
  end))

  it("test_context_manager: the lock acquire returns is released by <close>", in_task(function()
    local lock = Lock()
    do
      local l <close> = await(lock:acquire())
      assert.is_true(lock:locked())
      assert.are.equal(lock, l)
    end
    assert.is_false(lock:locked())
    local ok = pcall(function()
      local _ <close> = await(lock:acquire())
      error("boom")
    end)
    assert.is_false(ok)
    assert.is_false(lock:locked(), "an error leaving the scope releases the lock")
  end))

  it("a holder's release wakes waiters one at a time, each in turn", in_task(function()
    local lock, order = Lock(), {}
    local function worker(n)
      local _ <close> = await(lock:acquire())
      order[#order + 1] = n .. "+"
      await(sleep(0))
      order[#order + 1] = n .. "-"
    end
    local ts = {}
    for i = 1, 3 do ts[i] = create_task(worker, i) end
    await(asyncio.gather(table.unpack(ts)))
    assert.are.same({ "1+", "1-", "2+", "2-", "3+", "3-" }, order)
  end))
end)

describe("Event", function()
  it("test_repr", function()
    local ev = Event()
    assert.matches("%[unset%]", tostring(ev))
    ev:set()
    assert.matches("%[set%]", tostring(ev))
  end)

  it("test_wait: set() wakes every waiter", in_task(function()
    local ev = Event()
    assert.is_false(ev:is_set())
    local result = {}
    local function c(n)
      return function()
        if await(ev:wait()) then result[#result + 1] = n end
      end
    end
    local t1, t2 = create_task(c(1)), create_task(c(2))
    tick()
    assert.are.same({}, result)
    local t3 = create_task(c(3))
    ev:set()
    tick()
    assert.are.same({ 3, 1, 2 }, result)
    for _, t in ipairs { t1, t2, t3 } do
      assert.is_true(t:done())
      assert.is_nil(t:result())
    end
  end))

  it("test_wait_on_set: wait returns true at once", in_task(function()
    local ev = Event()
    ev:set()
    assert.is_true(await(ev:wait()))
  end))

  it("test_wait_cancel: a cancelled waiter leaves no waiter behind", in_task(function()
    local ev = Event()
    local wait = create_task(ev:wait())
    asyncio.get_running_loop():call_soon(function() wait:cancel() end)
    cancelled_error(await, wait)
    assert.are.equal("Event [unset]", tostring(ev))
  end))

  it("test_clear", function()
    local ev = Event()
    assert.is_false(ev:is_set())
    ev:set()
    assert.is_true(ev:is_set())
    ev:clear()
    assert.is_false(ev:is_set())
  end)

  it("test_clear_with_waiters: a waiter woken by set() returns even if cleared since", in_task(function()
    local ev = Event()
    local result = {}
    local t = create_task(function()
      if await(ev:wait()) then result[#result + 1] = 1 end
      return true
    end)
    tick()
    assert.are.same({}, result)
    ev:set()
    ev:clear()
    assert.is_false(ev:is_set())
    ev:set()
    ev:set()
    assert.matches("waiters:1", tostring(ev))
    tick()
    assert.are.same({ 1 }, result)
    assert.are.equal("Event [set]", tostring(ev))
    assert.is_true(t:done())
    assert.is_true(t:result())
  end))
end)

describe("Condition", function()
  it("test_wait: notify(n) wakes n waiters, which run once they get the lock", in_task(function()
    local cond = Condition()
    local result = {}
    local function c(n)
      return function()
        await(cond:acquire())
        if await(cond:wait()) then result[#result + 1] = n end
        return true
      end
    end
    local t1, t2, t3 = create_task(c(1)), create_task(c(2)), create_task(c(3))
    tick()
    assert.are.same({}, result)
    assert.is_false(cond:locked())
    assert.are.equal(cond, await(cond:acquire()))
    cond:notify()
    tick()
    assert.are.same({}, result)
    assert.is_true(cond:locked())
    cond:release()
    tick()
    assert.are.same({ 1 }, result)
    assert.is_true(cond:locked())
    cond:notify(2)
    tick()
    assert.are.same({ 1 }, result)
    assert.is_true(cond:locked())
    cond:release()
    tick()
    assert.are.same({ 1, 2 }, result)
    assert.is_true(cond:locked())
    cond:release()
    tick()
    assert.are.same({ 1, 2, 3 }, result)
    assert.is_true(cond:locked())
    for _, t in ipairs { t1, t2, t3 } do
      assert.is_true(t:done())
      assert.is_true(t:result())
    end
  end))

  it("test_wait_cancel: a cancelled wait still leaves the lock held", in_task(function()
    local cond = Condition()
    await(cond:acquire())
    local wait = create_task(cond:wait())
    asyncio.get_running_loop():call_soon(function() wait:cancel() end)
    cancelled_error(await, wait)
    assert.are.equal("Condition [locked]", tostring(cond))
    assert.is_true(cond:locked())
  end))

  it("test_wait_cancel_contested: a notified waiter re-acquires even when cancelled meanwhile", in_task(function()
    local cond = Condition()
    await(cond:acquire())
    assert.is_true(cond:locked())
    local wait_task = create_task(cond:wait())
    tick()
    assert.is_false(cond:locked())
    await(cond:acquire())
    assert.is_true(cond:locked())
    cond:notify()
    local loop = asyncio.get_running_loop()
    loop:call_soon(function() wait_task:cancel() end)
    loop:call_soon(function() cond:release() end)
    pcall(await, wait_task)
    assert.is_true(cond:locked())
  end))

  it("test_wait_cancel_after_notify: cancelled while re-acquiring, the waiter ends cancelled", in_task(function()
    local waited = false
    local cond = Condition()
    local waiter = create_task(function()
      local _ <close> = await(cond:acquire())
      waited = true
      await(cond:wait())
    end)
    tick()
    await(cond:acquire())
    cond:notify()
    tick()
    waiter:cancel()
    tick()
    cond:release()
    tick()
    assert.is_true(waiter:cancelled())
    assert.is_true(waited)
    assert.is_false(cond:locked(), "the waiter's <close> released the lock it re-acquired")
  end))

  it("test_wait_unacquired: waiting without the lock is an error", in_task(function()
    local cond = Condition()
    assert.matches("Condition:wait: the lock is not acquired", tostring(raises(await, cond:wait())))
  end))

  it("test_wait_for: returns once the predicate holds after a notification", in_task(function()
    local cond = Condition()
    local presult = false
    local result = {}
    local t = create_task(function()
      await(cond:acquire())
      if await(cond:wait_for(function() return presult end)) then
        result[#result + 1] = 1
        cond:release()
      end
      return true
    end)
    tick()
    assert.are.same({}, result)
    await(cond:acquire())
    cond:notify()
    cond:release()
    tick()
    assert.are.same({}, result)
    presult = true
    await(cond:acquire())
    cond:notify()
    cond:release()
    tick()
    assert.are.same({ 1 }, result)
    assert.is_true(t:done())
    assert.is_true(t:result())
  end))

  it("test_wait_for_unacquired: a true predicate returns at once, else the lock is needed", in_task(function()
    local cond = Condition()
    local list = { 1, 2, 3 }
    assert.are.equal(list, await(cond:wait_for(function() return list end)))
    assert.matches("not acquired", tostring(raises(await, cond:wait_for(function() return false end))))
  end))

  it("test_notify: notify(1) wakes one, notify(2048) the rest", in_task(function()
    local cond = Condition()
    local result = {}
    local function c(n)
      return function()
        await(cond:acquire())
        if await(cond:wait()) then
          result[#result + 1] = n
          cond:release()
        end
        return true
      end
    end
    local ts = { create_task(c(1)), create_task(c(2)), create_task(c(3)) }
    tick()
    assert.are.same({}, result)
    await(cond:acquire())
    cond:notify(1)
    cond:release()
    tick()
    assert.are.same({ 1 }, result)
    await(cond:acquire())
    cond:notify(1)
    cond:notify(2048)
    cond:release()
    tick()
    assert.are.same({ 1, 2, 3 }, result)
    for _, t in ipairs(ts) do assert.is_true(t:result()) end
  end))

  it("test_notify_all", in_task(function()
    local cond = Condition()
    local result = {}
    local function c(n)
      return function()
        await(cond:acquire())
        if await(cond:wait()) then
          result[#result + 1] = n
          cond:release()
        end
        return true
      end
    end
    local t1, t2 = create_task(c(1)), create_task(c(2))
    tick()
    assert.are.same({}, result)
    await(cond:acquire())
    cond:notify_all()
    cond:release()
    tick()
    assert.are.same({ 1, 2 }, result)
    assert.is_true(t1:result())
    assert.is_true(t2:result())
  end))

  it("test_notify_unacquired / test_notify_all_unacquired: errors naming the call", function()
    local cond = Condition()
    assert.matches("Condition:notify: the lock is not acquired", tostring(raises(cond.notify, cond)))
    assert.matches("Condition:notify_all: the lock is not acquired", tostring(raises(cond.notify_all, cond)))
  end)

  it("test_repr", in_task(function()
    local cond = Condition()
    assert.matches("unlocked", tostring(cond))
    await(cond:acquire())
    assert.matches("%[locked%]", tostring(cond))
    local w = create_task(cond:wait())
    tick()
    assert.matches("waiters:1", tostring(cond))
    await(cond:acquire())
    cond:notify()
    cond:release()
    await(w)
    cond:release()
  end))

  it("test_context_manager: acquire returns the condition, released by <close>", in_task(function()
    local cond = Condition()
    assert.is_false(cond:locked())
    do
      local c <close> = await(cond:acquire())
      assert.are.equal(cond, c)
      assert.is_true(cond:locked())
    end
    assert.is_false(cond:locked())
  end))

  it("test_explicit_lock: a Condition shares the lock it is given", in_task(function()
    local function f(lock, cond)
      lock = lock or Lock()
      cond = cond or Condition(lock)
      assert.is_false(lock:locked())
      assert.is_false(cond:locked())
      do
        local _ <close> = await(cond:acquire())
        assert.is_true(lock:locked())
        assert.is_true(cond:locked())
      end
      assert.is_false(lock:locked())
      assert.is_false(cond:locked())
      do
        local _ <close> = await(lock:acquire())
        assert.is_true(lock:locked())
        assert.is_true(cond:locked())
      end
      assert.is_false(lock:locked())
      assert.is_false(cond:locked())
    end
    f()
    f(Lock())
    local lock = Lock()
    f(lock, Condition(lock))
    assert.matches("Condition: expected an asyncio.Lock", tostring(raises(Condition, {})))
  end))

  it("test_timeout_in_block: wait_for(cond:wait(), t) times out and the lock is held again", in_task(function()
    local cond = Condition()
    local _ <close> = await(cond:acquire())
    local err = raises(await, asyncio.wait_for(cond:wait(), 0.05))
    assert.is_true(asyncio.TimeoutError:is(err), tostring(err))
    assert.is_true(cond:locked())
  end))

  it("test_cancelled_error_wakeup: cancelled while waiting, the cancellation comes out with its message", in_task(function()
    local cond = Condition()
    local raised
    local task = create_task(function()
      local _ <close> = await(cond:acquire())
      raised = cancelled_error(await, cond:wait_for(function() return false end))
      assert.is_true(cond:locked())
      error(raised, 0)
    end)
    tick()
    task:cancel("foo")
    local err = cancelled_error(await, task)
    assert.are.equal("foo", err.message)
    assert.are.equal("foo", raised.message)
    assert.is_false(cond:locked())
  end))

  it("test_cancelled_error_re_aquire: cancelled while re-acquiring, the same", in_task(function()
    local cond = Condition()
    local wake = false
    local raised
    local task = create_task(function()
      local _ <close> = await(cond:acquire())
      raised = cancelled_error(await, cond:wait_for(function() return wake end))
      assert.is_true(cond:locked())
      error(raised, 0)
    end)
    tick()
    await(cond:acquire())
    wake = true
    cond:notify()
    tick()
    task:cancel("foo")
    cond:release()
    local err = cancelled_error(await, task)
    assert.are.equal("foo", err.message)
    assert.are.equal("foo", raised.message)
  end))

  local function consumer_pair(cancel_while_relocking)
    local condition = Condition()
    local state = 0
    local function consumer()
      local _ <close> = await(condition:acquire())
      while true do
        await(condition:wait_for(function() return state ~= 0 end))
        if state < 0 then return end
        state = state - 1
      end
    end
    local c = { create_task(consumer), create_task(consumer) }
    tick()
    do
      local _ <close> = await(condition:acquire())
      state = state + 1
      condition:notify(1)
      if cancel_while_relocking then tick() end
      c[1]:cancel()
      pcall(function()
        local _ <close> = asyncio.timeout(0.05)
        await(condition:wait_for(function() return state == 0 end))
      end)
      assert.are.equal(0, state, "the notification was lost with the cancelled waiter")
      state = -1
      condition:notify_all()
    end
    await(c[2])
    assert.is_true(c[1]:cancelled())
  end

  it("test_cancelled_wakeup: a waiter cancelled as it is notified passes the notification on",
    in_task(function() consumer_pair(false) end))

  it("test_cancelled_wakeup_relock: the same when cancelled while re-acquiring the lock",
    in_task(function() consumer_pair(true) end))
end)

describe("Semaphore", function()
  it("test_initial_value_zero", function()
    assert.is_true(Semaphore(0):locked())
  end)

  it("test_repr", in_task(function()
    local sem = Semaphore()
    assert.matches("%[unlocked, value:1%]$", tostring(sem))
    await(sem:acquire())
    assert.matches("%[locked%]$", tostring(sem))
    create_task(sem:acquire())
    create_task(sem:acquire())
    tick()
    assert.matches("waiters:2", tostring(sem))
    sem:release()
    sem:release()
    tick()
  end))

  it("test_semaphore: a Semaphore is not itself awaitable", in_task(function()
    local sem = Semaphore()
    raises(await, sem)
    assert.is_false(sem:locked())
  end))

  it("test_semaphore_value: a negative or fractional value is an error naming the call", function()
    assert.matches("Semaphore: the initial value must be an integer >= 0, got %-1", tostring(raises(Semaphore, -1)))
    assert.matches("BoundedSemaphore: the initial value", tostring(raises(BoundedSemaphore, -1)))
    assert.matches("got 1.5", tostring(raises(Semaphore, 1.5)))
    assert.matches("got x", tostring(raises(Semaphore, "x")))
    assert.is_false(Semaphore(2.0):locked())
  end)

  it("test_acquire: waiters are served as units are released", in_task(function()
    local sem = Semaphore(3)
    local result = {}
    assert.are.equal(sem, await(sem:acquire()))
    assert.are.equal(sem, await(sem:acquire()))
    assert.is_false(sem:locked())
    local function c(n)
      return function()
        await(sem:acquire())
        result[#result + 1] = n
        return true
      end
    end
    local t1, t2, t3 = create_task(c(1)), create_task(c(2)), create_task(c(3))
    tick()
    assert.are.same({ 1 }, result)
    assert.is_true(sem:locked())
    assert.matches("waiters:2", tostring(sem))
    local t4 = create_task(c(4))
    sem:release()
    sem:release()
    tick()
    assert.are.equal(3, #result)
    assert.is_true(sem:locked())
    assert.matches("waiters:1", tostring(sem))
    assert.is_true(t1:result())
    local done = 0
    for _, t in ipairs { t2, t3, t4 } do
      if t:done() and t:result() then done = done + 1 end
    end
    assert.are.equal(2, done)
    sem:release()
    await(asyncio.gather(t2, t3, t4))
  end))

  it("test_acquire_cancel: a cancelled waiter leaves nothing behind", in_task(function()
    local sem = Semaphore()
    await(sem:acquire())
    local acquire = create_task(sem:acquire())
    asyncio.get_running_loop():call_soon(function() acquire:cancel() end)
    cancelled_error(await, acquire)
    assert.matches("%[locked%]$", tostring(sem))
    sem:release()
    assert.is_false(sem:locked())
  end))

  it("test_acquire_cancel_before_awoken: cancelled waiters do not consume a release", in_task(function()
    local sem = Semaphore(0)
    local t1, t2 = create_task(sem:acquire()), create_task(sem:acquire())
    local t3, t4 = create_task(sem:acquire()), create_task(sem:acquire())
    tick()
    t1:cancel()
    t2:cancel()
    sem:release()
    tick(2)
    assert.is_true(t3:done())
    assert.is_false(t4:done())
    t4:cancel()
    tick()
  end))

  it("test_acquire_hang: a cancelled first waiter does not strand the second", in_task(function()
    local sem = Semaphore(0)
    local t1, t2 = create_task(sem:acquire()), create_task(sem:acquire())
    tick()
    t1:cancel()
    sem:release()
    tick(2)
    assert.is_true(sem:locked())
    assert.is_true(t2:done())
  end))

  it("test_acquire_no_hang: a waiter cancelled after its wake-up gives the unit back", in_task(function()
    local sem = Semaphore(1)
    local t2
    local t1 = create_task(function()
      do
        local _ <close> = await(sem:acquire())
        await(sleep(0))
      end
      t2:cancel()
    end)
    t2 = create_task(function()
      local _ <close> = await(sem:acquire())
      error("t2 must not get the semaphore")
    end)
    local r1, r2 = await(asyncio.gather(t1, t2, { return_exceptions = true }))
    assert.is_nil(r1)
    assert.is_true(CancelledError:is(r2))
    await(asyncio.wait_for(sem:acquire(), 1))
  end))

  it("test_release_not_acquired: over-releasing a BoundedSemaphore is an error naming the call", function()
    local sem = BoundedSemaphore()
    assert.matches("BoundedSemaphore:release: released too many times", tostring(raises(sem.release, sem)))
    local sem2 = BoundedSemaphore(2)
    assert.matches("released too many times", tostring(raises(sem2.release, sem2)))
  end)

  it("a plain Semaphore may be released beyond its initial value", function()
    local sem = Semaphore(0)
    sem:release()
    sem:release()
    assert.matches("value:2", tostring(sem))
  end)

  it("test_release_no_waiters", in_task(function()
    local sem = Semaphore()
    await(sem:acquire())
    assert.is_true(sem:locked())
    sem:release()
    assert.is_false(sem:locked())
  end))

  it("test_acquire_fifo_order: holders take turns in arrival order", in_task(function()
    local sem = Semaphore(1)
    local result = {}
    local function coro(tag)
      return function()
        await(sem:acquire())
        result[#result + 1] = tag .. "_1"
        await(sleep(0.01))
        sem:release()
        await(sem:acquire())
        result[#result + 1] = tag .. "_2"
        await(sleep(0.01))
        sem:release()
      end
    end
    do
      local tg <close> = asyncio.TaskGroup()
      tg:create_task(coro("c1"))
      tg:create_task(coro("c2"))
      tg:create_task(coro("c3"))
    end
    assert.are.same({ "c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2" }, result)
  end))

  it("test_acquire_fifo_order_2: a releaser that acquires again queues behind the others", in_task(function()
    local sem = Semaphore(1)
    local result = {}
    local t1 = create_task(function()
      await(sem:acquire())
      result[#result + 1] = 1
      return true
    end)
    local t2 = create_task(function()
      await(sem:acquire())
      result[#result + 1] = 2
      sem:release()
      await(sem:acquire())
      result[#result + 1] = 4
      return true
    end)
    local t3 = create_task(function()
      await(sem:acquire())
      result[#result + 1] = 3
      return true
    end)
    tick()
    sem:release()
    sem:release()
    await(asyncio.gather(t1, t2, t3))
    assert.are.same({ 1, 2, 3, 4 }, result)
  end))

  it("test_acquire_fifo_order_3: a cancelled waiter is skipped", in_task(function()
    local sem = Semaphore(0)
    local result = {}
    local function c(n)
      return function()
        await(sem:acquire())
        result[#result + 1] = n
        return true
      end
    end
    local t1, t2, t3 = create_task(c(1)), create_task(c(2)), create_task(c(3))
    tick()
    t1:cancel()
    tick()
    sem:release()
    sem:release()
    await(asyncio.gather(t1, t2, t3, { return_exceptions = true }))
    assert.are.same({ 2, 3 }, result)
  end))

  it("a BoundedSemaphore limits concurrency and <close> releases it", in_task(function()
    local sem = BoundedSemaphore(2)
    local running, peak = 0, 0
    local function worker()
      local _ <close> = await(sem:acquire())
      running = running + 1
      if running > peak then peak = running end
      await(sleep(0.001))
      running = running - 1
    end
    local ts = {}
    for i = 1, 6 do ts[i] = create_task(worker) end
    await(asyncio.gather(table.unpack(ts)))
    assert.are.equal(2, peak)
    assert.matches("value:2", tostring(sem))
  end))
end)

describe("Barrier", function()
  local N = 5

  local function gather_tasks(n, fn)
    local ts = {}
    for i = 1, n do ts[i] = create_task(fn) end
    return { await(asyncio.gather(table.unpack(ts))) }, ts
  end

  it("test_barrier: a Barrier is not itself awaitable", in_task(function()
    local barrier = Barrier(N)
    assert.matches("filling", tostring(barrier))
    raises(await, barrier)
    assert.matches("filling", tostring(barrier))
  end))

  it("test_repr: filling, draining, resetting, broken", in_task(function()
    local barrier = Barrier(N)
    assert.are.equal("Barrier [filling, waiters:0/5]", tostring(barrier))
    local waiters = {}
    local function wait() await(barrier:wait()) end
    for _ = 1, 2 do waiters[#waiters + 1] = create_task(wait) end
    tick()
    assert.matches("waiters:2/5", tostring(barrier))
    for _ = 1, barrier.parties - barrier:n_waiting() do waiters[#waiters + 1] = create_task(wait) end
    tick()
    assert.matches("draining", tostring(barrier))
    for _ = 1, 2 do waiters[#waiters + 1] = create_task(wait) end
    tick()
    await(barrier:reset())
    assert.matches("resetting", tostring(barrier))
    for _ = 1, 2 do waiters[#waiters + 1] = create_task(wait) end
    tick()
    await(barrier:abort())
    assert.matches("broken", tostring(barrier))
    assert.is_true(barrier:broken())
    await(asyncio.gather(waiters, { return_exceptions = true }))
  end))

  it("test_barrier_parties: parties must be an integer > 0", function()
    assert.matches("Barrier: parties must be an integer > 0, got 0", tostring(raises(Barrier, 0)))
    assert.matches("got %-4", tostring(raises(Barrier, -4)))
    assert.matches("got nil", tostring(raises(Barrier)))
    assert.are.equal(N, Barrier(N).parties)
  end)

  it("test_context_manager: each of the parties gets a distinct index", in_task(function()
    local barrier = Barrier(3)
    local results = gather_tasks(3, function() return await(barrier:wait()) end)
    table.sort(results)
    assert.are.same({ 0, 1, 2 }, results)
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_filling_one_task", in_task(function()
    local barrier = Barrier(1)
    assert.are.equal(0, await(barrier:wait()))
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_filling_one_task_twice", in_task(function()
    local barrier = Barrier(1)
    local t1 = create_task(barrier:wait())
    tick()
    assert.are.equal(0, barrier:n_waiting())
    local t2 = create_task(barrier:wait())
    tick()
    assert.are.equal(t1:result(), t2:result())
    assert.are.equal(t1:done(), t2:done())
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_filling_task_by_task: n_waiting counts arrivals", in_task(function()
    local barrier = Barrier(3)
    local t1 = create_task(barrier:wait())
    tick()
    assert.are.equal(1, barrier:n_waiting())
    local t2 = create_task(barrier:wait())
    tick()
    assert.are.equal(2, barrier:n_waiting())
    local t3 = create_task(barrier:wait())
    tick()
    await(asyncio.wait({ t1, t2, t3 }))
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_filling_tasks_wait_twice / test_filling_tasks_check_return_value", in_task(function()
    local barrier = Barrier(N)
    local results1, results2 = {}, {}
    local res = gather_tasks(N, function()
      await(barrier:wait())
      results1[#results1 + 1] = true
      local i = await(barrier:wait())
      results2[#results2 + 1] = true
      return i
    end)
    assert.are.equal(N, #results1)
    assert.are.equal(N, #results2)
    table.sort(res)
    assert.are.same({ 0, 1, 2, 3, 4 }, res)
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_draining_state: released tasks see the barrier draining until the last leaves", in_task(function()
    local barrier = Barrier(N)
    local results = {}
    gather_tasks(N, function()
      await(barrier:wait())
      results[#results + 1] = tostring(barrier):find("draining") ~= nil
    end)
    assert.are.equal(N, #results)
    assert.is_false(results[N])
    for i = 1, N - 1 do assert.is_true(results[i]) end
  end))

  it("test_blocking_tasks_while_draining: a new wait blocks until draining ends", in_task(function()
    local barrier = Barrier(N)
    local rewait = 2
    local barrier_nowaiting = Barrier(N - rewait)
    local rewait_n = rewait
    gather_tasks(N, function()
      await(barrier:wait())
      if rewait_n > 0 then
        rewait_n = rewait_n - 1
        await(barrier:wait())
      else
        await(barrier_nowaiting:wait())
        await(barrier:wait())
      end
    end)
    assert.are.equal(0, barrier:n_waiting())
  end))

  it("test_filling_tasks_cancel_one: a cancelled waiter leaves the count", in_task(function()
    local barrier = Barrier(3)
    local results = {}
    local function coro()
      await(barrier:wait())
      results[#results + 1] = true
    end
    local t1 = create_task(coro)
    tick()
    assert.are.equal(1, barrier:n_waiting())
    local t2 = create_task(coro)
    tick()
    assert.are.equal(2, barrier:n_waiting())
    t1:cancel()
    tick()
    assert.are.equal(1, barrier:n_waiting())
    cancelled_error(await, t1)
    assert.is_true(t1:cancelled())
    local t3 = create_task(coro)
    tick()
    assert.are.equal(2, barrier:n_waiting())
    local t4 = create_task(coro)
    await(asyncio.gather(t2, t3, t4))
    assert.are.equal(3, #results)
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_reset_barrier", in_task(function()
    local barrier = Barrier(1)
    create_task(barrier:reset())
    tick()
    assert.are.equal(0, barrier:n_waiting())
    assert.is_false(barrier:broken())
  end))

  it("test_reset_barrier_while_tasks_waiting: waiters fail with the broken-barrier error", in_task(function()
    local barrier = Barrier(N)
    local results = {}
    local ts = {}
    for i = 1, N - 1 do
      ts[i] = create_task(function()
        local ok, err = pcall(await, barrier:wait())
        if not ok and broken_barrier(err) then results[#results + 1] = true end
      end)
    end
    tick()
    create_task(barrier:reset())
    await(asyncio.gather(table.unpack(ts)))
    assert.are.equal(N - 1, #results)
    assert.are.equal(0, barrier:n_waiting())
    assert.is_nil(tostring(barrier):find("resetting"))
    assert.is_false(barrier:broken())
  end))

  it("test_reset_barrier_when_tasks_half_draining", in_task(function()
    local barrier = Barrier(N)
    local results1 = {}
    local rest_of_tasks = N // 2
    gather_tasks(N, function()
      local ok, err = pcall(await, barrier:wait())
      if not ok then
        assert.is_true(broken_barrier(err), tostring(err))
        results1[#results1 + 1] = true
      elseif barrier._count == rest_of_tasks then
        await(barrier:reset())
      end
    end)
    assert.are.same({ true, true }, results1)
    assert.are.equal(0, barrier:n_waiting())
    assert.is_nil(tostring(barrier):find("resetting"))
    assert.is_false(barrier:broken())
  end))

  it("test_reset_barrier_while_tasks_waiting_and_waiting_again", in_task(function()
    local barrier = Barrier(N)
    local results1, results2 = {}, {}
    local ts = {}
    for i = 1, N - 1 do
      ts[i] = create_task(function()
        local ok, err = pcall(await, barrier:wait())
        if not ok and broken_barrier(err) then results1[#results1 + 1] = true end
        await(barrier:wait())
        results2[#results2 + 1] = true
      end)
    end
    create_task(barrier:reset())
    tick()
    create_task(function()
      await(barrier:wait())
      results2[#results2 + 1] = true
    end)
    await(asyncio.gather(table.unpack(ts)))
    assert.is_false(barrier:broken())
    assert.are.equal(N - 1, #results1)
    assert.are.equal(N, #results2)
    assert.are.equal(0, barrier:n_waiting())
  end))

  it("test_reset_barrier_while_tasks_draining: a reset while draining breaks no one", in_task(function()
    local barrier = Barrier(N)
    local results1, results2, results3 = {}, {}, {}
    local count = 0
    gather_tasks(N, function()
      await(barrier:wait())
      count = count + 1
      if count == N then
        await(barrier:reset())
        await(barrier:wait())
      else
        local ok = pcall(await, barrier:wait())
        if ok then results1[#results1 + 1] = true else results2[#results2 + 1] = true end
      end
      await(barrier:wait())
      results3[#results3 + 1] = true
    end)
    assert.is_false(barrier:broken())
    assert.are.equal(N - 1, #results1)
    assert.are.equal(0, #results2)
    assert.are.equal(N, #results3)
    assert.are.equal(0, barrier:n_waiting())
  end))

  it("test_abort_barrier", in_task(function()
    local barrier = Barrier(1)
    create_task(barrier:abort())
    tick()
    assert.are.equal(0, barrier:n_waiting())
    assert.is_true(barrier:broken())
    local err = raises(await, barrier:wait())
    assert.is_true(broken_barrier(err))
    assert.matches("^InvalidStateError: broken barrier", tostring(err))
  end))

  it("test_abort_barrier_when_tasks_half_draining_half_blocking", in_task(function()
    local barrier = Barrier(N)
    local results1, results2 = {}, {}
    local blocking_tasks = N // 2
    local count = 0
    gather_tasks(N, function()
      local ok, err = pcall(await, barrier:wait())
      if not ok then
        assert.is_true(broken_barrier(err))
        results1[#results1 + 1] = true
        return
      end
      count = count + 1
      if count > blocking_tasks then
        await(barrier:abort())
      else
        local ok2, err2 = pcall(await, barrier:wait())
        if not ok2 and broken_barrier(err2) then results2[#results2 + 1] = true end
      end
    end)
    assert.is_true(barrier:broken())
    assert.are.equal(blocking_tasks, #results1)
    assert.are.equal(N - blocking_tasks - 1, #results2)
    assert.are.equal(0, barrier:n_waiting())
  end))

  it("test_abort_barrier_when_exception: every other waiter sees the barrier broken", in_task(function()
    local barrier = Barrier(N)
    local results1, results2 = {}, {}
    gather_tasks(N, function()
      local ok, err = pcall(function()
        local i = await(barrier:wait())
        if i == N // 2 then error("boom", 0) end
        await(barrier:wait())
        results1[#results1 + 1] = true
      end)
      if ok then return end
      if broken_barrier(err) then
        results2[#results2 + 1] = true
      else
        assert.are.equal("boom", err)
        await(barrier:abort())
      end
    end)
    assert.is_true(barrier:broken())
    assert.are.equal(0, #results1)
    assert.are.equal(N - 1, #results2)
    assert.are.equal(0, barrier:n_waiting())
  end))

  it("test_abort_barrier_when_exception_then_resetting: reset mends a broken barrier", in_task(function()
    local barrier1, barrier2 = Barrier(N), Barrier(N)
    local results1, results2, results3 = {}, {}, {}
    gather_tasks(N, function()
      local ok, err = pcall(function()
        local i = await(barrier1:wait())
        if i == N // 2 then error("boom", 0) end
        await(barrier1:wait())
        results1[#results1 + 1] = true
      end)
      if not ok then
        if broken_barrier(err) then
          results2[#results2 + 1] = true
        else
          await(barrier1:abort())
        end
      end
      local i = await(barrier2:wait())
      if i == N // 2 then await(barrier1:reset()) end
      await(barrier2:wait())
      await(barrier1:wait())
      results3[#results3 + 1] = true
    end)
    assert.is_false(barrier1:broken())
    assert.are.equal(0, #results1)
    assert.are.equal(N - 1, #results2)
    assert.are.equal(N, #results3)
    assert.are.equal(0, barrier1:n_waiting())
  end))
end)
