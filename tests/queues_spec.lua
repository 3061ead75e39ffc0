-- queues_spec.lua — Queue, LifoQueue and PriorityQueue: put/get, the *_nowait forms,
-- task_done/join and shutdown. Ports the behaviours of CPython's test_queues.py (named
-- in each description).

local support = require "tests.support"
local sleep, create_task = asyncio.sleep, asyncio.create_task
local Queue, LifoQueue, PriorityQueue = asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue
local CancelledError, QueueEmpty, QueueFull, QueueShutDown =
  asyncio.CancelledError, asyncio.QueueEmpty, asyncio.QueueFull, asyncio.QueueShutDown

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local function in_task(fn)
  return function() return await(create_task(fn)) end
end

local tick = support.tick

local raises = support.raises

local function raises_class(class, fn, ...)
  local err = raises(fn, ...)
  assert.is_true(class:is(err), "expected a " .. class.name .. ", got " .. tostring(err))
  return err
end

local function shut_down(fn, ...)
  return raises_class(QueueShutDown, fn, ...)
end

describe("Queue basics", function()
  it("test_repr / test_str: tostring shows size, getters and putters", in_task(function()
    local q = Queue()
    assert.matches("^Queue %[maxsize=0, qsize=0%]$", tostring(q))
    local getter = create_task(q:get())
    tick()
    assert.matches("getters=1", tostring(q))
    q:put_nowait(0)
    assert.are.equal(0, await(getter))
    q = Queue(1)
    q:put_nowait(1)
    local putter = create_task(q:put(2))
    tick()
    assert.matches("putters=1", tostring(q))
    q:get_nowait()
    await(putter)
    assert.matches("qsize=1, tasks=2", tostring(q))
  end))

  it("test_empty", in_task(function()
    local q = Queue()
    assert.is_true(q:empty())
    await(q:put(1))
    assert.is_false(q:empty())
    assert.are.equal(1, await(q:get()))
    assert.is_true(q:empty())
  end))

  it("test_full", in_task(function()
    assert.is_false(Queue():full())
    local q = Queue(1)
    await(q:put(1))
    assert.is_true(q:full())
  end))

  it("test_order: FIFO", in_task(function()
    local q = Queue()
    for _, i in ipairs { 1, 3, 2 } do await(q:put(i)) end
    local items = {}
    for i = 1, 3 do items[i] = await(q:get()) end
    assert.are.same({ 1, 3, 2 }, items)
  end))

  it("test_maxsize: put blocks while the queue is full", in_task(function()
    local q = Queue(2)
    assert.are.equal(2, q.maxsize)
    local have_been_put = {}
    local t = create_task(function()
      for i = 0, 2 do
        await(q:put(i))
        have_been_put[#have_been_put + 1] = i
      end
      return true
    end)
    tick(2)
    assert.are.same({ 0, 1 }, have_been_put)
    assert.are.equal(0, await(q:get()))
    tick()
    assert.are.same({ 0, 1, 2 }, have_been_put)
    assert.are.equal(1, await(q:get()))
    assert.are.equal(2, await(q:get()))
    assert.is_true(t:done())
    assert.is_true(t:result())
  end))

  it("maxsize must be an integer: an error naming the call (test_float_maxsize differs on purpose)", function()
    assert.matches("Queue: maxsize must be an integer", tostring(raises(Queue, 1.3)))
    assert.matches("PriorityQueue: maxsize must be an integer", tostring(raises(PriorityQueue, "2")))
    assert.matches("LifoQueue: maxsize must be an integer", tostring(raises(LifoQueue, {})))
    assert.are.equal(3, Queue(3.0).maxsize)
    assert.are.equal(0, Queue().maxsize)
    local unbounded = Queue(-1)
    for i = 1, 100 do unbounded:put_nowait(i) end
    assert.is_false(unbounded:full())
  end)

  it("items may be any value, nil and false included", in_task(function()
    local q = Queue()
    q:put_nowait(nil)
    q:put_nowait(false)
    assert.are.equal(2, q:qsize())
    assert.is_nil(await(q:get()))
    assert.is_false(await(q:get()))
    assert.is_true(q:empty())
  end))
end)

describe("Queue get", function()
  it("test_blocking_get", in_task(function()
    local q = Queue()
    q:put_nowait(1)
    assert.are.equal(1, await(q:get()))
  end))

  it("test_get_with_putters: get wakes a waiting putter", in_task(function()
    local q = Queue(1)
    await(q:put(1))
    local putter = create_task(q:put(2))
    tick()
    assert.is_false(putter:done())
    assert.are.equal(1, await(q:get()))
    tick()
    assert.is_true(putter:done())
    assert.are.equal(2, q:get_nowait())
  end))

  it("test_blocking_get_wait: get waits for a put", in_task(function()
    local q = Queue()
    local started = asyncio.Event()
    local finished = false
    local t = create_task(function()
      started:set()
      local res = await(q:get())
      finished = true
      return res
    end)
    await(started:wait())
    assert.is_false(finished)
    asyncio.get_running_loop():call_later(0.01, function() q:put_nowait(1) end)
    assert.are.equal(1, await(t))
    assert.is_true(finished)
  end))

  it("test_nonblocking_get", function()
    local q = Queue()
    q:put_nowait(1)
    assert.are.equal(1, q:get_nowait())
  end)

  it("test_nonblocking_get_exception: get_nowait on an empty queue raises QueueEmpty", function()
    local err = raises_class(QueueEmpty, Queue().get_nowait, Queue())
    assert.matches("Queue:get_nowait: the queue is empty", tostring(err))
  end)

  it("test_get_cancelled_race: a cancelled getter does not take the item", in_task(function()
    local q = Queue()
    local t1, t2 = create_task(q:get()), create_task(q:get())
    tick()
    t1:cancel()
    tick()
    assert.is_true(t1:done())
    await(q:put("a"))
    tick()
    assert.are.equal("a", await(t2))
  end))

  it("test_get_with_waiting_putters", in_task(function()
    local q = Queue(1)
    create_task(q:put("a"))
    create_task(q:put("b"))
    assert.are.equal("a", await(q:get()))
    assert.are.equal("b", await(q:get()))
  end))

  it("test_why_are_getters_waiting: a producer and a consumer through a one-slot queue", in_task(function()
    local q = Queue(1)
    local got = {}
    local tg <close> = asyncio.TaskGroup()
    tg:create_task(function() for i = 1, 5 do await(q:put(i)) end end)
    tg:create_task(function() for _ = 1, 5 do got[#got + 1] = await(q:get()) end end)
    await(sleep(0.01))
    assert.are.same({ 1, 2, 3, 4, 5 }, got)
  end))

  it("test_cancelled_getters_not_being_held_in_self_getters", in_task(function()
    local q = Queue(5)
    raises_class(asyncio.TimeoutError, await, asyncio.wait_for(q:get(), 0.01))
    assert.is_nil(tostring(q):find("getters"))
  end))

  it("test_get_cancel_drop_one_pending_reader: a getter cancelled after its wake-up loses no item", in_task(function()
    local q = Queue()
    local reader = create_task(q:get())
    tick()
    q:put_nowait(1)
    q:put_nowait(2)
    reader:cancel()
    local ok = pcall(await, reader)
    if not ok then
      reader = create_task(q:get())
      await(reader)
    end
    assert.are.equal(1, reader:result(), "if we get 2, 1 was dropped")
  end))

  it("test_get_cancel_drop_many_pending_readers: the wake-up passes to the next reader", in_task(function()
    local q = Queue()
    local reader1, reader2, reader3
    do
      local tg <close> = asyncio.TaskGroup()
      reader1 = tg:create_task(q:get())
      reader2 = tg:create_task(q:get())
      reader3 = tg:create_task(q:get())
      tick()
      q:put_nowait(1)
      q:put_nowait(2)
      reader1:cancel()
      raises_class(CancelledError, await, reader1)
      await(reader3)
    end
    local got = { reader2:result(), reader3:result() }
    table.sort(got)
    assert.are.same({ 1, 2 }, got)
  end))
end)

describe("Queue put", function()
  it("test_blocking_put", in_task(function()
    local q = Queue()
    await(q:put(1))
    assert.are.equal(1, await(q:get()))
  end))

  it("test_blocking_put_wait: put waits for room", in_task(function()
    local q = Queue(1)
    local started = asyncio.Event()
    local finished = false
    asyncio.get_running_loop():call_later(0.01, function() q:get_nowait() end)
    local t = create_task(function()
      started:set()
      await(q:put(1))
      await(q:put(2))
      finished = true
    end)
    await(started:wait())
    assert.is_false(finished)
    await(t)
    assert.is_true(finished)
  end))

  it("test_nonblocking_put", function()
    local q = Queue()
    q:put_nowait(1)
    assert.are.equal(1, q:get_nowait())
  end)

  it("test_nonblocking_put_exception: put_nowait on a full queue raises QueueFull", function()
    local q = Queue(1)
    q:put_nowait(1)
    local err = raises_class(QueueFull, q.put_nowait, q, 2)
    assert.matches("Queue:put_nowait: the queue is full", tostring(err))
  end)

  it("test_put_cancel_drop: a putter cancelled after its wake-up puts nothing", in_task(function()
    local q = Queue(1)
    q:put_nowait(1)
    local writer = create_task(q:put(2))
    tick()
    assert.are.equal(1, q:get_nowait())
    writer:cancel()
    local ok = pcall(await, writer)
    if not ok then
      writer = create_task(q:put(2))
      await(writer)
    end
    assert.are.equal(2, q:get_nowait())
    assert.are.equal(0, q:qsize())
  end))

  it("test_put_cancelled: put into an unbounded queue completes at once", in_task(function()
    local q = Queue()
    local t = create_task(function()
      await(q:put(1))
      return true
    end)
    assert.are.equal(1, await(q:get()))
    assert.is_true(t:done())
    assert.is_true(t:result())
  end))

  it("test_put_cancelled_race: a cancelled putter does not put", in_task(function()
    local q = Queue(1)
    local put_a, put_b, put_c = create_task(q:put("a")), create_task(q:put("b")), create_task(q:put("X"))
    tick()
    assert.is_true(put_a:done())
    assert.is_false(put_b:done())
    put_c:cancel()
    tick()
    assert.is_true(put_c:done())
    assert.are.equal("a", q:get_nowait())
    tick()
    assert.are.equal("b", q:get_nowait())
    await(put_b)
    assert.is_true(q:empty())
  end))

  it("test_put_with_waiting_getters", in_task(function()
    local q = Queue()
    local t = create_task(q:get())
    tick()
    await(q:put("a"))
    assert.are.equal("a", await(t))
  end))

  it("test_why_are_putters_waiting: putters proceed as a getter drains", in_task(function()
    local q = Queue(2)
    do
      local tg <close> = asyncio.TaskGroup()
      tg:create_task(function()
        await(sleep(0))
        for _ = 1, q:qsize() do q:get_nowait() end
      end)
      for i = 0, 3 do tg:create_task(q:put(i)) end
    end
    assert.are.equal(2, q:qsize())
    assert.are.equal(2, q:get_nowait())
    assert.are.equal(3, q:get_nowait())
  end))

  it("test_cancelled_puts_not_being_held_in_self_putters", in_task(function()
    local q = Queue(1)
    q:put_nowait(1)
    local put_task = create_task(q:put(1))
    tick()
    assert.matches("putters=1", tostring(q))
    put_task:cancel()
    raises_class(CancelledError, await, put_task)
    assert.is_nil(tostring(q):find("putters"))
  end))

  it("test_cancelled_put_silence_value_error_exception: cancel after get_nowait woke the putter", in_task(function()
    local q = Queue(1)
    q:put_nowait(1)
    local put_task = create_task(q:put(1))
    tick()
    q:get_nowait()
    put_task:cancel()
    raises_class(CancelledError, await, put_task)
    assert.is_true(q:empty())
  end))
end)

describe("LifoQueue and PriorityQueue", function()
  it("LifoQueue test_order: last in, first out", in_task(function()
    local q = LifoQueue()
    for _, i in ipairs { 1, 3, 2 } do await(q:put(i)) end
    local items = {}
    for i = 1, 3 do items[i] = await(q:get()) end
    assert.are.same({ 2, 3, 1 }, items)
    assert.matches("^LifoQueue ", tostring(q))
  end))

  it("PriorityQueue test_order: smallest first", in_task(function()
    local q = PriorityQueue()
    for _, i in ipairs { 1, 3, 2 } do await(q:put(i)) end
    local items = {}
    for i = 1, 3 do items[i] = await(q:get()) end
    assert.are.same({ 1, 2, 3 }, items)
  end))

  it("PriorityQueue orders by <, keeps equal items in insertion order", function()
    local q = PriorityQueue()
    local mt = { __lt = function(a, b) return a.p < b.p end }
    local function item(p, name) return setmetatable({ p = p, name = name }, mt) end
    math.randomseed(7)
    local names = {}
    for i = 1, 200 do
      local p = math.random(1, 10)
      q:put_nowait(item(p, i))
    end
    local last_p, last_name = -1, -1
    while not q:empty() do
      local it = q:get_nowait()
      assert.is_true(it.p >= last_p)
      if it.p == last_p then assert.is_true(it.name > last_name, "equal items keep insertion order") end
      last_p, last_name = it.p, it.name
      names[#names + 1] = it.name
    end
    assert.are.equal(200, #names)
  end)

  it("PriorityQueue: an item that cannot be compared is refused and the heap stays intact", function()
    local q = PriorityQueue()
    q:put_nowait(5)
    q:put_nowait(1)
    assert.matches("attempt to compare", tostring(raises(q.put_nowait, q, {})))
    assert.are.equal(2, q:qsize())
    assert.are.equal(1, q:get_nowait())
    assert.are.equal(5, q:get_nowait())
    q:task_done()
    q:task_done()
    raises(q.task_done, q) -- the refused item does not count
  end)
end)

for _, kind in ipairs { "Queue", "LifoQueue", "PriorityQueue" } do
  local new = asyncio[kind]

  describe(kind .. " join", function()
    it("test_task_done_underflow: task_done with nothing to finish is an error", function()
      local q = new()
      assert.matches(":task_done: called more times than there were items", tostring(raises(q.task_done, q)))
    end)

    it("test_task_done: join returns once every item is processed", in_task(function()
      local q = new()
      for i = 0, 99 do q:put_nowait(i) end
      local accumulator = 0
      local running = true
      local function worker()
        while running do
          local item = await(q:get())
          accumulator = accumulator + item
          q:task_done()
        end
      end
      local tg <close> = asyncio.TaskGroup()
      local tasks = { tg:create_task(worker), tg:create_task(worker) }
      await(q:join())
      assert.are.equal(4950, accumulator)
      running = false
      for _ = 1, #tasks do q:put_nowait(0) end
    end))

    it("test_join_empty_queue: join returns at once", in_task(function()
      local q = new()
      await(q:join())
      await(q:join())
    end))

    it("join waits while an item taken out is not marked done", in_task(function()
      local q = new()
      q:put_nowait(1)
      local joined = create_task(q:join())
      q:get_nowait()
      tick(2)
      assert.is_false(joined:done())
      q:task_done()
      await(joined)
    end))
  end)

  describe(kind .. " shutdown", function()
    it("test_shutdown_empty: waiting getters and later put/get raise QueueShutDown", in_task(function()
      local q = new()
      local get_task = create_task(q:get())
      tick()
      q:shutdown(false)
      assert.are.equal(0, q:qsize())
      await(q:join())
      tick()
      assert.is_true(get_task:done())
      shut_down(await, get_task)
      shut_down(await, q:put("data"))
      shut_down(q.put_nowait, q, "data")
      shut_down(await, q:get())
      shut_down(q.get_nowait, q)
      assert.matches("shutdown", tostring(q))
    end))

    it("test_shutdown_nonempty: items left can still be taken", in_task(function()
      local q = new(1)
      q:put_nowait("data")
      local join_task = create_task(q:join())
      local put_task = create_task(q:put("data2"))
      tick()
      assert.is_false(put_task:done())
      q:shutdown(false)
      assert.are.equal(1, q:qsize())
      tick()
      assert.is_true(put_task:done())
      shut_down(await, put_task)
      assert.are.equal("data", await(q:get()))
      tick()
      assert.is_false(join_task:done())
      shut_down(await, q:put("data"))
      shut_down(q.put_nowait, q, "data")
      shut_down(await, q:get())
      shut_down(q.get_nowait, q)
      q:task_done()
      tick()
      assert.is_true(join_task:done())
      await(join_task)
      raises(q.task_done, q)
    end))

    it("test_shutdown_immediate: queued items are dropped and count as done", in_task(function()
      local q = new()
      q:put_nowait("data")
      local join_task = create_task(q:join())
      q:shutdown(true)
      assert.are.equal(0, q:qsize())
      tick()
      assert.is_true(join_task:done())
      await(join_task)
      shut_down(await, q:put("data"))
      shut_down(q.put_nowait, q, "data")
      shut_down(await, q:get())
      shut_down(q.get_nowait, q)
      raises(q.task_done, q)
    end))

    it("test_shutdown_immediate_with_unfinished: items already taken still need task_done", in_task(function()
      local q = new()
      q:put_nowait("data")
      q:put_nowait("data")
      local join_task = create_task(q:join())
      assert.are.equal("data", await(q:get()))
      q:shutdown(true)
      assert.are.equal(0, q:qsize())
      tick()
      assert.is_false(join_task:done())
      shut_down(await, q:put("data"))
      shut_down(q.put_nowait, q, "data")
      shut_down(await, q:get())
      shut_down(q.get_nowait, q)
      q:task_done()
      raises(q.task_done, q)
      tick()
      assert.is_true(join_task:done())
      await(join_task)
    end))

    it("shutdown wakes every waiting putter of a full queue", in_task(function()
      local q = new(1)
      q:put_nowait(1)
      local p1, p2 = create_task(q:put(2)), create_task(q:put(3))
      tick()
      q:shutdown()
      shut_down(await, p1)
      shut_down(await, p2)
      assert.are.equal(1, q:get_nowait())
    end))
  end)
end
