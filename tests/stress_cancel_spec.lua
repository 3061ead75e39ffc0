-- stress_cancel_spec.lua — tasks cancelled at random points: mid-read, mid-drain, inside
-- `<close>` handlers that await, inside locks, timeouts, task groups and everyday awaits.
-- Whatever the point, no byte read or written may be lost, every lock and semaphore ends
-- free, every `<close>` handler runs, and no task is left behind.
-- Sizes: STRESS=full (about 430,000 tasks of which at least 100,000 are cancelled at a
-- random point), default (about 43,000 / 11,000), quick (4,300 / 1,100: under valgrind).
-- STRESS_SEED=n replays a run (the seed is in every failure message).

local support = require "tests.support"
local sleep, create_task, gather = asyncio.sleep, asyncio.create_task, asyncio.gather
local CancelledError = asyncio.CancelledError

local MODE = os.getenv("STRESS") or "default"
local SCALE = ({ full = 10, quick = 0.1 })[MODE] or 1
local function count(n) return math.max(1, math.floor(n * SCALE)) end

local SEED = tonumber(os.getenv("STRESS_SEED")) or os.time()
math.randomseed(SEED)
local random = math.random
local function why(msg) return ("%s (STRESS_SEED=%d)"):format(msg, SEED) end

local totals = { tasks = 0, cancelled = 0 }

-- Cancels `t` at a random point: after 0 to 8 turns of the loop, or after a random delay
-- of up to 2 ms, or not at all (one time in five).
local loop = asyncio.get_running_loop
local cancellers = {}
local function cancel_at_random(t)
  local how = random(5)
  if how == 1 then return end
  if how <= 3 then
    local turns = random(0, 8)
    cancellers[#cancellers + 1] = create_task(function()
      for _ = 1, turns do await(sleep(0)) end
      t:cancel()
    end)
  else
    loop():call_later(random() * 0.002, function() t:cancel() end)
  end
end

-- Waits for every task of the list, counts it, and checks none failed with anything but
-- a cancellation (or an error its scenario expects: `allowed(err)`).
local function settle(list, allowed)
  list[#list + 1] = { return_exceptions = true }
  await(gather(table.unpack(list)))
  list[#list] = nil
  local live = {}
  for _, c in ipairs(cancellers) do
    if not c:done() then live[#live + 1] = c end
  end
  cancellers = live
  for _, t in ipairs(list) do
    totals.tasks = totals.tasks + 1
    if t:cancelled() then
      totals.cancelled = totals.cancelled + 1
    else
      local err = t:exception()
      if err ~= nil and not (allowed and allowed(err)) then
        error(why("a task failed: " .. tostring(err)), 0)
      end
    end
  end
end

-- A connected pair of TCP streams on the loopback.
local function stream_pair()
  local got = asyncio.Future()
  local server = await(asyncio.start_server(function(r, w) got:set_result(r, w) end, "127.0.0.1", 0))
  local r1, w1 = await(asyncio.open_connection("127.0.0.1", select(2, server:sockname())))
  local r2, w2 = await(got)
  server:close()
  return r1, w1, r2, w2
end

-- Runs the spec's body in a task, then lets the cancellers it started finish.
local function in_task(fn)
  return function()
    await(create_task(fn))
    for _, t in ipairs(cancellers) do await(t) end
    cancellers = {}
  end
end

after_each(function()
  collectgarbage()
  assert.are.equal(0, support.cancel_leftovers(), why("tasks left over"))
end)

describe("tasks cancelled at random points", function()
  it("mid-read: readline, readuntil, readexactly and read lose no byte", in_task(function()
    local PAIRS, READS = 16, count(1000) -- READS reader tasks per pair
    local function one_pair()
      local r, _, _, w = stream_pair()
      -- the producer: numbered records in random pieces, with pauses, so that readers
      -- are often suspended with part of a record buffered
      local sent = {}
      local producer = create_task(function()
        local i = 0
        while true do
          i = i + 1
          local rec = ("%d:%s\n"):format(i, ("x"):rep(random(0, 40)))
          local p = 1
          while p <= #rec do
            local piece = rec:sub(p, p + random(1, #rec) - 1)
            w:write(piece)
            sent[#sent + 1] = piece
            p = p + #piece
            if random(3) == 1 then await(sleep(0)) end
          end
          await(w:drain())
        end
      end)
      local got, tasks = {}, {}
      local reads = {
        function() return await(r:readline()) end,
        function() return await(r:readuntil(":")) end,
        function() return await(r:readuntil("\n")) end,
        function() return await(r:readexactly(random(1, 30))) end,
        function() return await(r:read(random(1, 50))) end,
      }
      for n = 1, READS do
        local t = create_task(reads[random(#reads)])
        tasks[n] = t
        cancel_at_random(t)
        local ok, data = pcall(await, t)
        if ok then
          got[#got + 1] = data
        else
          assert(CancelledError:is(data), why("read failed: " .. tostring(data)))
        end
      end
      producer:cancel()
      pcall(await, producer)
      -- what the readers got is a prefix of what was sent, and what is still buffered
      -- continues it
      local all_sent, all_got = table.concat(sent), table.concat(got)
      assert.are.equal(all_sent:sub(1, #all_got), all_got, why("the bytes read differ from those sent"))
      local rest = all_sent:sub(#all_got + 1)
      if #rest > 0 then
        assert.are.equal(rest, await(r:readexactly(#rest)), why("bytes lost after the cancelled reads"))
      end
      w:close()
      settle(tasks)
    end
    local pairs_tasks = {}
    for p = 1, PAIRS do pairs_tasks[p] = create_task(one_pair) end
    for _, t in ipairs(pairs_tasks) do await(t) end
  end))

  it("mid-drain: cancelled drains lose no byte written", in_task(function()
    local PAIRS, WRITES = 8, count(1000)
    local function one_pair()
      local _, w, r, _ = stream_pair()
      w:set_write_buffer_limits(4096, 1024)
      -- what was written and not yet read back: the reader checks each piece it gets
      -- against it, so memory stays small at any size
      local expected, head, tail, offset = {}, 1, 0, 0
      local written, received = 0, 0
      local function check(data)
        local p = 1
        while p <= #data do
          local chunk = expected[head]
          local n = math.min(#chunk - offset, #data - p + 1)
          if data:sub(p, p + n - 1) ~= chunk:sub(offset + 1, offset + n) then
            error(why("the bytes received differ from those written at byte " .. received + p), 0)
          end
          p, offset = p + n, offset + n
          if offset == #chunk then
            expected[head], head, offset = nil, head + 1, 0
          end
        end
        received = received + #data
      end
      -- a slow reader keeps the writer above its high-water mark most of the time
      local reader = create_task(function()
        while true do
          local data = await(r:read(random(512, 8192)))
          if data == "" then return end
          check(data)
          if random(4) == 1 then await(sleep(0.0005)) end
        end
      end)
      local tasks = {}
      for n = 1, WRITES do
        local t = create_task(function()
          local chunk = ("%d;"):format(n):rep(random(1, 3000))
          w:write(chunk)
          tail = tail + 1
          expected[tail] = chunk
          written = written + #chunk
          await(w:drain())
          if random(2) == 1 then await(w:drain()) end
        end)
        cancel_at_random(t)
        if random(8) == 1 then
          settle({ t }) -- now and then the writer waits for its own drain
        else
          tasks[#tasks + 1] = t
        end
        if #tasks >= 200 then
          settle(tasks)
          tasks = {}
        end
      end
      settle(tasks)
      w:close()
      await(w:wait_closed())
      await(reader)
      assert.are.equal(written, received, why("bytes written and received differ"))
    end
    local list = {}
    for p = 1, PAIRS do list[p] = create_task(one_pair) end
    for _, t in ipairs(list) do await(t) end
  end))

  it("inside <close> handlers that await, with locks, timeouts and task groups", in_task(function()
    local N = count(10000)
    local locks, sem = {}, asyncio.Semaphore(3)
    for i = 1, 16 do locks[i] = asyncio.Lock() end
    local declared, closed = { a = 0, b = 0, l = 0 }, { a = 0, b = 0, l = 0 }
    local function closer(name, fn)
      declared[name] = declared[name] + 1
      return setmetatable({}, { __close = function(_, err)
        closed[name] = closed[name] + 1
        fn(err)
      end })
    end
    local function body()
      local _ <close> = closer("a", function()
        for _ = 1, random(0, 3) do await(sleep(0)) end
      end)
      local held <close> = await(locks[random(#locks)]:acquire())
      local _ <close> = closer("l", function() end)
      local _ <close> = asyncio.timeout(random() * 0.003)
      local _ <close> = closer("b", function()
        -- an awaiting handler: cancellations often land here
        await(sleep(0))
        local s <close> = await(sem:acquire())
        await(sleep(0))
      end)
      local tg <close> = asyncio.TaskGroup()
      for _ = 1, random(0, 2) do tg:create_task(function() await(sleep(random() * 0.001)) end) end
      await(sleep(0))
    end
    local batch = {}
    for n = 1, N do
      local t = create_task(body)
      batch[#batch + 1] = t
      cancel_at_random(t)
      if #batch == 200 or n == N then
        settle(batch, function(e) return asyncio.TimeoutError:is(e) end)
        batch = {}
      end
    end
    for _, k in ipairs({ "a", "b", "l" }) do
      assert.are.equal(declared[k], closed[k], why("<close> handlers " .. k .. " not all run"))
    end
    for _, lock in ipairs(locks) do assert.is_false(lock:locked(), why("a lock is still held")) end
    assert.is_false(sem:locked(), why("the semaphore is not back to its value"))
  end))

  it("at everyday awaits: queues, events, futures, gather, wait_for, shield", in_task(function()
    local N = count(tonumber(os.getenv("N4") or 8000))
    local q, ev = asyncio.Queue(4), asyncio.Event()
    local shielded_done, shielded_started = 0, 0
    local ops = {
      function() await(q:put(random(100))) end,
      function() await(q:get()) end,
      function() await(ev:wait()) end,
      function() local f = asyncio.Future() loop():call_soon(function() if not f:done() then f:set_result(1) end end) await(f) end,
      function() await(gather(sleep(0), sleep(0.001), create_task(function() await(sleep(0)) end))) end,
      function() pcall(await, asyncio.wait_for(sleep(0.002), random() * 0.002)) end,
      function()
        shielded_started = shielded_started + 1
        await(asyncio.shield(create_task(function() await(sleep(0)) shielded_done = shielded_done + 1 end)))
      end,
      function() for _ = 1, random(5) do await(sleep(0)) end end,
    }
    local batch = {}
    for n = 1, N do
      local t = create_task(function()
        for _ = 1, random(1, 4) do ops[random(#ops)]() end
      end)
      batch[#batch + 1] = t
      cancel_at_random(t)
      if n % 50 == 0 then ev:set() ev:clear() end
      if #batch == 400 or n == N then
        -- unblock the queue's waiters, so that tasks not cancelled can finish
        local drainer = create_task(function()
          -- turn about: empty the queue (putters get in), then fill it (getters do)
          while true do
            while not q:empty() do q:get_nowait() end
            ev:set()
            await(sleep(0))
            while not q:full() do q:put_nowait(0) end
            await(sleep(0))
          end
        end)
        settle(batch)
        drainer:cancel()
        pcall(await, drainer)
        ev:clear()
        batch = {}
      end
    end
    await(sleep(0.01))
    assert.are.equal(shielded_started, shielded_done, why("a shielded task did not complete"))
    print(("# stress_cancel: %d tasks, %d cancelled (seed %d, %s)"):format(
      totals.tasks, totals.cancelled, SEED, MODE))
    if MODE == "full" then assert.is_true(totals.cancelled >= 100000, why("fewer than 100,000 cancelled")) end
  end))
end)
