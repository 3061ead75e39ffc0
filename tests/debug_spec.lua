-- debug_spec.lua — seeing inside a running program: asyncio.print_tasks names what each
-- task waits on and who waits on it (a hang is diagnosed from its output alone),
-- task:get_stack / print_stack, and the loop's debug settings. Debug mode's reports on
-- stderr and SIGQUIT are in tests/cli/debug.sh.

local support = require "tests.support"

after_each(support.expect_no_tasks_left)

-- print_tasks into a string
local function dump()
  local f = assert(io.tmpfile())
  asyncio.print_tasks(f)
  f:seek("set")
  local s = f:read("a")
  f:close()
  return s
end

-- the report as a table: name -> {state =, waits_on =, stack = {lines}, waited_by =}
local function parse(report)
  local tasks, cur = {}, nil
  for line in report:gmatch("[^\n]+") do
    local name, state = line:match("^Task '(.-)': (.*)$")
    if name then
      cur = { state = state, stack = {} }
      tasks[name] = cur
    elseif cur then
      local key, value = line:match("^  ([%a ]+): (.*)$")
      if key == "waits on" then cur.waits_on = value
      elseif key == "waited on by" then cur.waited_by = value
      elseif line:match("^    ") then cur.stack[#cur.stack + 1] = line:match("^%s+(.*)$") end
    end
  end
  return tasks
end

-- the report once `ready(tasks)` holds: polled, never timed (10 s at most, then as is)
local function dump_when(ready)
  local deadline = asyncio.get_running_loop():time() + 10
  while true do
    local report = dump()
    local tasks = parse(report)
    if ready(tasks) or asyncio.get_running_loop():time() > deadline then return report, tasks end
    await(asyncio.sleep(0.01))
  end
end

local function waiting(...)
  local names = { ... }
  return function(tasks)
    for _, n in ipairs(names) do
      if not tasks[n] or tasks[n].state ~= "waiting" then return false end
    end
    return true
  end
end

local function line_here() return debug.getinfo(2, "l").currentline end

describe("asyncio.print_tasks", function()
  it("diagnoses a task stuck on a lock held by a task that waits on a queue", function()
    local lock, jobs = asyncio.Lock(), asyncio.Queue()
    local producer_line, consumer_line
    local producer = asyncio.create_task(function()
      local l <close> = await(lock:acquire())
      producer_line = line_here() + 1
      return await(jobs:get()) -- nobody ever puts: stuck, holding the lock
    end)
    producer:set_name("producer")
    local consumer = asyncio.create_task(function()
      await(asyncio.sleep(0.01))
      consumer_line = line_here() + 1
      local l <close> = await(lock:acquire())
    end)
    consumer:set_name("consumer")
    local report, tasks = dump_when(waiting("consumer", "producer"))

    -- follow the chain from the stuck consumer, as a reader of the report would
    local c = assert(tasks.consumer, report)
    assert.are.equal("waiting", c.state)
    local holder = c.waits_on:match("^Lock %(held by Task '(.-)'%)$")
    assert.are.equal("producer", holder, report)
    local p = assert(tasks[holder], report)
    assert.are.equal("Queue.get (0 items)", p.waits_on, report)
    assert.are.equal("Task 'consumer' (wants a lock it holds)", p.waited_by, report)
    -- each stack names the line where the task waits, in this file
    local here = debug.getinfo(1, "S").short_src
    assert.is_truthy(report:find(here .. ":" .. consumer_line .. ":", 1, true), report)
    assert.is_truthy(report:find(here .. ":" .. producer_line .. ":", 1, true), report)
    producer:cancel()
    consumer:cancel()
  end)

  it("names a sleep's Future a task awaits with the time left", function()
    local s = asyncio.ensure_future(asyncio.sleep(5)) -- a sleep Future, started here
    local napper = asyncio.create_task(function() await(s) end)
    napper:set_name("napper")
    local report, tasks = dump_when(waiting("napper"))
    local left = tonumber((tasks.napper.waits_on or ""):match("^sleep %((%d+%.%d) s left%)$"))
    assert.is_truthy(left and left > 1 and left <= 5, report)
    s:cancel()
    assert.is_false(pcall(await, napper))
  end)

  it("names sleeps with the time left, awaited tasks, events, queues, and who awaits", function()
    local ev, q = asyncio.Event(), asyncio.Queue(1)
    q:put_nowait("x")
    local sleeper = asyncio.create_task(asyncio.sleep(5), "sleeper")
    local worker = asyncio.create_task(function() await(ev:wait()) end)
    worker:set_name("worker-3")
    local boss = asyncio.create_task(function() await(worker) end)
    boss:set_name("boss")
    local putter = asyncio.create_task(function() await(q:put("y")) end)
    putter:set_name("putter")
    local later = asyncio.create_task(function() end)
    later:set_name("later")
    local tasks = parse(dump())
    assert.are.equal("not started", tasks.later.state)
    local report
    report, tasks = dump_when(function(t)
      return waiting("worker-3", "boss", "putter")(t) and t.sleeper.state == "sleeping"
    end)
    local left = tonumber(tasks.sleeper.waits_on:match("^sleep %((%d+%.%d) s left%)$"))
    assert.is_truthy(left and left > 1 and left <= 5, report)
    assert.are.equal("Event.wait", tasks["worker-3"].waits_on)
    assert.are.equal("Task 'worker-3'", tasks.boss.waits_on)
    assert.are.equal("Task 'boss'", tasks["worker-3"].waited_by)
    assert.are.equal("Queue.put (1 item of 1)", tasks.putter.waits_on)
    assert.is_nil(tasks.later, "a finished task is not listed")
    ev:set()
    await(boss)
    sleeper:cancel()
    putter:cancel()
    await(asyncio.gather(putter, sleeper, { return_exceptions = true }))
  end)

  it("names a read on a stream with its peer, and a server's accept", function()
    local server = await(asyncio.start_server(function(reader, writer)
      await(reader:read(1)) -- the client never writes
      writer:close()
    end, "127.0.0.1", 0))
    local host, port = server:sockname()
    local serving = asyncio.create_task(function() await(server:serve_forever()) end)
    serving:set_name("serving")
    local reader, writer = await(asyncio.open_connection(host, port))
    local client = asyncio.create_task(function() await(reader:readline()) end)
    client:set_name("client")
    local report, tasks = dump_when(function(t)
      local handlers = 0
      for name, task in pairs(t) do
        if name ~= "client" and (task.waits_on or ""):match("^read on") then handlers = handlers + 1 end
      end
      return waiting("client")(t) and handlers == 1
    end)
    assert.are.equal(("read on %s:%d"):format(host, port), tasks.client.waits_on, report)
    local handler
    for name, t in pairs(tasks) do
      if name ~= "client" and t.waits_on:match("^read on 127%.0%.0%.1:%d+$") then handler = t end
    end
    assert.is_truthy(handler, "the connection's handler reads from the client: " .. report)
    writer:write("\n")
    await(client)
    writer:close()
    serving:cancel()
    pcall(await, serving)
    server:close()
    await(server:wait_closed())
  end)

  it("names a process's exit, a UDP recvfrom, a gather with its pending tasks", function()
    local p = await(asyncio.create_subprocess_exec("sleep", "10"))
    local waiter = asyncio.create_task(function() return await(p:wait()) end)
    waiter:set_name("waiter")
    local udp = await(asyncio.open_udp({ local_addr = { "127.0.0.1", 0 } }))
    local host, port = udp:sockname()
    local receiver = asyncio.create_task(function() return await(udp:recvfrom()) end)
    receiver:set_name("receiver")
    local a = asyncio.create_task(asyncio.sleep(10), "a")
    local gatherer = asyncio.create_task(function() return await(asyncio.gather(a, asyncio.sleep(10))) end)
    gatherer:set_name("gatherer")
    local report, tasks = dump_when(waiting("waiter", "receiver", "gatherer"))
    assert.are.equal(("process %d to exit"):format(p.pid), tasks.waiter.waits_on, report)
    assert.are.equal(("recvfrom on %s:%d"):format(host, port), tasks.receiver.waits_on, report)
    assert.are.equal("gather (0 of 2 done; pending: Task 'a', a Future)", tasks.gatherer.waits_on, report)
    assert.are.equal("Task 'gatherer'", tasks.a.waited_by, report)
    p:kill()
    await(waiter)
    udp:close()
    pcall(await, receiver)
    gatherer:cancel()
    pcall(await, gatherer)
  end)

  it("shows a task not started whose body is a C function", function()
    -- (its body's place is shown only for a Lua function; a C one failed the report:
    -- "attempt to index a Task value")
    local c = asyncio.create_task(select, "#", "a C function")
    local s = asyncio.create_task(asyncio.sleep, 0)
    local lua = asyncio.create_task(async(function() end)())
    local tasks = parse(dump())
    assert.are.equal("not started", tasks[c:get_name()].state)
    assert.are.equal("not started", tasks[s:get_name()].state)
    assert.are.equal("not started", tasks[lua:get_name()].state)
    await(asyncio.gather(c, s, lua))
  end)

  it("writes to io.stderr by default and says how many tasks", function()
    local t = asyncio.create_task(asyncio.sleep(1))
    local saved = io.stderr
    local f = assert(io.tmpfile())
    io.stderr = f
    local ok, err = pcall(asyncio.print_tasks)
    io.stderr = saved
    assert.is_true(ok, err)
    f:seek("set")
    assert.is_truthy(f:read("a"):match("^1 pending task %(asyncio.print_tasks%):\nTask 'Task%-%d+': "))
    f:close()
    t:cancel()
  end)
end)

describe("task:get_stack and task:print_stack", function()
  it("give the frames of a suspended task, oldest first, with the user's line", function()
    local line
    local async function inner()
      line = line_here() + 1
      await(asyncio.sleep(1))
    end
    local t = asyncio.create_task(function() await(inner()) end)
    await(asyncio.sleep(0))
    local frames = t:get_stack()
    assert.is_true(#frames >= 1)
    local here = debug.getinfo(1, "S").short_src
    local found
    for i, f in ipairs(frames) do
      if f.source == here and f.line == line then found = i end
    end
    assert.is_truthy(found, "no frame at the await's line")
    assert.are.equal(#frames, #t:get_stack(#frames + 5))
    local last = t:get_stack(1)
    assert.are.equal(1, #last)
    assert.are.same(frames[#frames], last[1])

    local out = assert(io.tmpfile())
    t:print_stack(nil, out)
    out:seek("set")
    local text = out:read("a")
    out:close()
    assert.is_truthy(text:match("^Stack for Task '[^']+' %(most recent call last%):\n"), text)
    assert.is_truthy(text:find(here .. ":" .. line .. ":", 1, true), text)
    t:cancel()
    pcall(await, t)
    assert.are.same({}, t:get_stack())
  end)

  -- API.md section 9: the user's frames, alua's own folded into one line unless debug
  -- mode is on, as print_tasks and error tracebacks show them
  it("print_stack folds alua's own frames into '(asyncio internals)', as print_tasks does", function()
    local lock = asyncio.Lock()
    local held = await lock:acquire()
    local t = asyncio.create_task(function() local l <close> = await lock:acquire() end)
    await asyncio.sleep(0)
    local function stack_text()
      local out = assert(io.tmpfile())
      t:print_stack(nil, out)
      out:seek("set")
      local text = out:read("a")
      out:close()
      return text
    end
    local text = stack_text()
    assert.is_nil(text:find("stdlib/", 1, true), text)
    assert.is_nil(text:find("[C]", 1, true), text)
    assert.is_truthy(text:find("\n  %(asyncio internals%)\n") or text:find("\n  %(asyncio internals%)$"), text)
    assert.is_truthy(text:find("debug_spec.lua:%d+: in "), text)
    local loop = asyncio.get_running_loop()
    loop:set_debug(true)
    local full = stack_text()
    loop:set_debug(false)
    assert.is_truthy(full:find("stdlib/asyncio/locks.lua:", 1, true), full)
    assert.is_true(#t:get_stack() > 1) -- the frames themselves stay whole
    held:release()
    await t
  end)
end)

describe("the loop's debug settings", function()
  it("set_debug, get_debug and slow_callback_duration", function()
    local loop = asyncio.get_running_loop()
    assert.is_false(loop:get_debug())
    assert.are.equal(0.1, loop.slow_callback_duration)
    loop.slow_callback_duration = 0.5
    assert.are.equal(0.5, loop.slow_callback_duration)
    loop:set_debug(true)
    assert.is_true(loop:get_debug())
    loop:set_debug(false)
    assert.is_false(loop:get_debug())
    loop.slow_callback_duration = 0.1
    assert.has_error(function() loop.slow_callback_duration = -1 end)
    assert.has_error(function() loop.slow_callback_duration = "x" end)
    local ok, err = pcall(function() loop.something = 1 end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):match("cannot set field 'something'"))
  end)
end)
