-- workers_spec.lua — start_worker, asyncio.parent, to_thread and cpu_count on real
-- threads: the copy of values between states, errors crossing, terminate and cancel
-- interrupting Lua that never yields, workers ending with messages in flight.

local support = require "tests.support"
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local count = 0

-- Writes a worker script and returns its path.
local function script(code)
  count = count + 1
  local path = ("%s/w%d.lua"):format(dir, count)
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

teardown(function() os.execute("rm -rf " .. dir) end)

-- Bounds every wait of this spec: a lost message or a missed interrupt fails, never hangs.
local function within(seconds, aw)
  return await(asyncio.wait_for(aw, seconds * support.SLOWDOWN))
end

describe("cpu_count", function()
  it("is the number of CPUs this process may use", function()
    local n = asyncio.cpu_count()
    assert.are.equal("integer", math.type(n))
    local p = io.popen("nproc")
    local expected = tonumber(p:read("a"))
    p:close()
    assert.are.equal(expected, n)
  end)
end)

describe("start_worker", function()
  it("runs a script with keyword syntax, asyncio and require on its own thread", function()
    local path = script [[
      local a, b = ...
      local support = require "tests.support"
      async function twice(x) await asyncio.sleep(0.001) return 2 * x end
      assert(asyncio.parent and asyncio.parent ~= nil)
      return await twice(a), b.k, type(support.tick)
    ]]
    local w = within(5, asyncio.start_worker(path, 21, { k = "v" }))
    assert.matches("Worker", tostring(w))
    assert.are.same({ 42, "v", "function" }, { within(5, w:wait()) })
    assert.is_nil(within(5, w:recv()))
    assert.matches("ended", tostring(w))
  end)

  it("is nil as asyncio.parent in the main thread", function()
    assert.is_nil(asyncio.parent)
  end)

  it("passes messages both ways in order", function()
    local w = within(5, asyncio.start_worker(script [[
      while true do
        local m = await asyncio.parent:recv()
        if m == "stop" then break end
        asyncio.parent:send(m * 10)
      end
      return "stopped"
    ]]))
    for i = 1, 100 do w:send(i) end
    for i = 1, 100 do assert.are.equal(i * 10, within(5, w:recv())) end
    w:send("stop")
    assert.are.equal("stopped", within(5, w:wait()))
    assert.is_nil(within(5, w:recv()))
  end)

  it("raises at start when the script cannot be loaded", function()
    -- named for the call, at the user's line (API.md section 9), as a bad path is
    local line = debug.getinfo(1, "l").currentline + 1
    local err = support.raises(function() local w = await(asyncio.start_worker(dir .. "/missing.lua")) return w end)
    assert.matches("^tests/workers_spec.lua:" .. line .. ": start_worker: cannot open [^\n]*missing.lua", tostring(err))
    err = support.raises(function() local w = await(asyncio.start_worker(script "return +")) return w end)
    assert.matches("^tests/workers_spec.lua:%d+: start_worker: [^\n]*unexpected symbol", tostring(err))
    err = support.raises(function() asyncio.start_worker(42) end)
    assert.matches("start_worker: expected the path of a script, got number", err)
  end)

  it("names what cannot be copied among the script's arguments", function()
    local err = support.raises(function() asyncio.start_worker(script "", 1, { f = print }) end)
    assert.matches("start_worker: arg%[2%]%.f is a function", err)
  end)
end)

describe("a worker's asyncio", function()
  it("loads a part of the stdlib only when one of its names is first used", function()
    local w = within(5, asyncio.start_worker(script [[
      local before = rawget(asyncio, "Lock") == nil and rawget(asyncio, "Queue") == nil
      local lock = asyncio.Lock()
      return before, rawget(asyncio, "Lock") ~= nil, rawget(asyncio, "Queue") == nil, lock:locked()
    ]]))
    assert.are.same({ true, true, true, false }, { within(5, w:wait()) })
  end)

  it("finds every public name from a fresh state, and pairs sees them all", function()
    local names = {}
    for k in pairs(asyncio) do
      if type(k) == "string" then names[#names + 1] = k end
    end
    table.sort(names)
    assert.is_true(#names > 60, "pairs(asyncio) saw " .. #names .. " names")
    local fresh = script [[
      local name = ...
      if name then return asyncio[name] ~= nil end
      local seen = {}
      for k in pairs(asyncio) do
        if type(k) == "string" and k ~= "parent" then seen[#seen + 1] = k end
      end
      table.sort(seen)
      return seen
    ]]
    -- one fresh state per name: its part (and the parts it imports) loads for it alone
    local missing = {}
    for _, name in ipairs(names) do
      local w = within(5, asyncio.start_worker(fresh, name))
      if not within(5, w:wait()) then missing[#missing + 1] = name end
    end
    assert.are.same({}, missing, "names a fresh state does not find")
    local w = within(5, asyncio.start_worker(fresh))
    assert.are.same(names, within(5, w:wait()))
  end)
end)

describe("the copy between states", function()
  local echo
  before_each(function()
    echo = within(5, asyncio.start_worker(script [[
      while true do
        local m = await asyncio.parent:recv()
        if m == nil then return end
        asyncio.parent:send(m)
      end
    ]]))
  end)
  after_each(function()
    echo:terminate()
    pcall(await, echo:wait())
  end)

  local function round_trip(v)
    echo:send(v)
    return within(5, echo:recv())
  end

  it("keeps integers and floats apart, and every byte of a string", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local s = table.concat(bytes)
    local t = round_trip({ 1, 1.0, -0.0, math.maxinteger, math.mininteger, 1 / 0, 2 ^ 53, s, "", true, false })
    assert.are.equal("integer", math.type(t[1]))
    assert.are.equal("float", math.type(t[2]))
    assert.are.equal("-0.0", tostring(t[3]))
    assert.are.equal(math.maxinteger, t[4])
    assert.are.equal(math.mininteger, t[5])
    assert.are.equal(1 / 0, t[6])
    assert.are.equal("float", math.type(t[7]))
    assert.are.equal(s, t[8])
    assert.are.equal("", t[9])
    assert.is_true(t[10])
    assert.is_false(t[11])
    local nan = round_trip(0 / 0)
    assert.is_true(nan ~= nan)
    assert.are.equal("x\0y", round_trip("x\0y"))
  end)

  it("keeps cycles and shared subtables", function()
    local shared = { "shared" }
    local t = { a = shared, b = shared, list = { shared, shared } }
    t.self = t
    t[shared] = "table key"
    local c = round_trip(t)
    assert.are.equal(c, c.self)
    assert.are.equal(c.a, c.b)
    assert.are.equal(c.a, c.list[1])
    assert.are.equal(c.a, c.list[2])
    assert.are.equal("shared", c.a[1])
    assert.are.equal("table key", c[c.a])
    assert.are_not.equal(shared, c.a) -- a copy, not the same table
  end)

  it("drops metatables and copies nested tables and keys of every kind", function()
    local t = setmetatable({ nested = { deeper = { 1, 2, { 3 } } }, [1.5] = "float key", [true] = "yes" },
      { __index = function() return "meta" end })
    local c = round_trip(t)
    assert.is_nil(getmetatable(c))
    assert.is_nil(c.missing)
    assert.are.same({ 1, 2, { 3 } }, c.nested.deeper)
    assert.are.equal("float key", c[1.5])
    assert.are.equal("yes", c[true])
    local big = {}
    for i = 1, 10000 do big[i] = { i, tostring(i) } end
    assert.are.same(big, round_trip(big))
  end)

  it("names the path of what cannot cross", function()
    local err = support.raises(function() echo:send({ handlers = { print, function() end } }) end)
    assert.matches("^[^:]*workers_spec.lua:%d+: send: value%.handlers%[1%] is a function", err)
    -- called through pcall (a C function): the line is that of the Lua code calling pcall,
    -- here support.raises's, as for every bad argument (argcheck)
    err = support.raises(echo.send, echo, { handlers = { 1, function() end } })
    assert.matches("^[^:]*support.lua:%d+: send: value%.handlers%[2%] is a function", err)
    err = support.raises(echo.send, echo, { ["a key"] = { coroutine.create(print) } })
    assert.matches('^[^:]*support.lua:%d+: send: value%["a key"%]%[1%] is a thread', err)
    err = support.raises(echo.send, echo, io.stdout)
    assert.matches("^[^:]*support.lua:%d+: send: value is a userdata", err)
    err = support.raises(echo.send, echo, { [print] = 1 })
    assert.matches("^[^:]*support.lua:%d+: send: a key of value is a function", err)
    local deep = {}
    local t = deep
    for _ = 1, 2000 do t.next = {} t = t.next end
    err = support.raises(echo.send, echo, deep)
    assert.matches("^[^:]*support.lua:%d+: send: value%.next%.next.* is nested more than 1000 tables deep", err)
    -- nothing was sent by the failed calls
    assert.are.equal("after", round_trip("after"))
  end)
end)

describe("errors from a worker", function()
  it("cross with class, message and the worker's traceback", function()
    local path = script [[
      local function fail() error(asyncio.TimeoutError("too slow", { limit = 3 })) end
      fail()
    ]]
    local w = within(5, asyncio.start_worker(path))
    local err = support.raises(function() within(5, w:wait()) end)
    assert.is_true(TimeoutError:is(err))
    assert.are.equal("too slow", err.message)
    assert.are.equal(3, err.limit)
    assert.matches(path:gsub("%p", "%%%0") .. ":1", err.traceback)
    -- the error is kept: every wait() raises it
    assert.is_true(TimeoutError:is(support.raises(function() within(5, w:wait()) end)))
  end)

  it("keeps a plain error's message with its position", function()
    local path = script "local x = nil\nreturn x.field"
    local w = within(5, asyncio.start_worker(path))
    local err = support.raises(function() within(5, w:wait()) end)
    assert.matches("w%d+%.lua:2: attempt to index a nil value", err)
  end)

  it("turns an error value that cannot be copied into its text", function()
    local w = within(5, asyncio.start_worker(script "error(setmetatable({}, {__tostring = function() return 'odd' end}))"))
    local err = support.raises(function() within(5, w:wait()) end)
    assert.are.same({}, err) -- a table without its metatable, as any value crosses
    w = within(5, asyncio.start_worker(script "error(print)"))
    err = support.raises(function() within(5, w:wait()) end)
    assert.matches("error object is a function value", err)
  end)

  it("reports results that cannot be copied", function()
    local w = within(5, asyncio.start_worker(script "return 1, { f = print }"))
    local err = support.raises(function() within(5, w:wait()) end)
    assert.matches("wait: result%[2%]%.f is a function", err)
  end)
end)

describe("a worker ending", function()
  it("leaves its messages in flight to be read, then recv returns nil", function()
    local w = within(5, asyncio.start_worker(script [[
      for i = 1, 1000 do asyncio.parent:send(i) end
      return "sent"
    ]]))
    assert.are.equal("sent", within(5, w:wait()))
    for i = 1, 1000 do assert.are.equal(i, within(5, w:recv())) end
    assert.is_nil(within(5, w:recv()))
    assert.is_nil(within(5, w:recv()))
  end)

  it("after failing, still delivers what it sent", function()
    local w = within(5, asyncio.start_worker(script [[
      asyncio.parent:send("before")
      error("boom")
    ]]))
    assert.matches("boom", support.raises(function() within(5, w:wait()) end))
    assert.are.equal("before", within(5, w:recv()))
    assert.is_nil(within(5, w:recv()))
  end)

  it("makes send a clear error", function()
    local w = within(5, asyncio.start_worker(script "return 1"))
    within(5, w:wait())
    local err = support.raises(w.send, w, "late")
    assert.matches("^send: the worker has ended %(.*w%d+%.lua%)", err)
  end)

  it("runs its loop until empty before wait returns", function()
    local w = within(5, asyncio.start_worker(script [[
      asyncio.create_task(async(function()
        await asyncio.sleep(0.05)
        asyncio.parent:send("late task")
      end))
      return "main chunk done"
    ]]))
    assert.are.equal("main chunk done", within(5, w:wait()))
    assert.are.equal("late task", within(5, w:recv()))
  end)

  it("sees nil from asyncio.parent:recv() once its creator dropped it", function()
    local out, status = support.run_alua(([[
      local w = await asyncio.start_worker(%q)
      w = nil
      collectgarbage()
      collectgarbage()
    ]]):format(script [[
      local m = await asyncio.parent:recv()
      io.write("worker got ", tostring(m), "\n")
    ]]))
    assert.are.equal("worker got nil\n", out)
    assert.are.equal(0, status)
  end)
end)

describe("serving on every core", function()
  it("spreads one port's connections over workers (scripts/examples/serve_every_core.lua)", function()
    local example, port, workers = "scripts/examples/serve_every_core.lua", 0, {}
    for i = 1, 2 do
      workers[i] = within(5, asyncio.start_worker(example, port, i))
      port = within(5, workers[i]:recv())
    end
    local seen = {}
    for _ = 1, 40 do
      local reader, writer = within(5, asyncio.open_connection("127.0.0.1", port))
      writer:write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
      assert.are.equal("HTTP/1.1 200 OK\r\n", within(5, reader:readline()))
      repeat local line = within(5, reader:readline()) until line == "\r\n"
      seen[within(5, reader:readline())] = true
      writer:close()
    end
    for _, w in ipairs(workers) do w:send("stop") end
    for _, w in ipairs(workers) do assert.are.equal(0, select("#", within(5, w:wait()))) end
    assert.is_true(seen["Hello from worker 1\n"] and seen["Hello from worker 2\n"])
  end)
end)

describe("terminate", function()
  it("interrupts a main chunk that never yields", function()
    local w = within(5, asyncio.start_worker(script [[
      asyncio.parent:send("spinning")
      while true do end
    ]]))
    assert.are.equal("spinning", within(5, w:recv()))
    w:terminate()
    local err = support.raises(function() within(5, w:wait()) end)
    assert.is_true(CancelledError:is(err))
    local e2 = support.raises(w.send, w, "x")
    assert.matches("send: the worker was terminated", e2)
  end)

  it("ends a main chunk that awaits in a loop at the top level", function()
    -- its own top-level await is cancelled: Lua the loop runs is no place for the
    -- interrupt, and a loop of sleeps never ends by itself
    for _, body in ipairs({ "while true do await asyncio.sleep(0.001) end",
                            "while true do await asyncio.sleep(0) end",
                            "await asyncio.sleep(3600)" }) do
      local w = within(5, asyncio.start_worker(script("asyncio.parent:send('up')\n" .. body)))
      assert.are.equal("up", within(5, w:recv()))
      w:terminate()
      local err = support.raises(function() within(5, w:wait()) end)
      assert.is_true(CancelledError:is(err), tostring(err))
      assert.matches("worker terminated", tostring(err))
    end
  end)

  it("interrupts a task that never yields, inside a coroutine too", function()
    local w = within(5, asyncio.start_worker(script [[
      asyncio.create_task(async(function()
        local co = coroutine.wrap(function() asyncio.parent:send("spinning") while true do end end)
        co()
      end))
    ]]))
    assert.are.equal("spinning", within(5, w:recv()))
    w:terminate()
    assert.is_true(CancelledError:is(support.raises(function() within(5, w:wait()) end)))
  end)

  it("cancels the worker's tasks, whose <close> handlers and pcalls run", function()
    local w = within(5, asyncio.start_worker(script [[
      local server = await asyncio.start_server(function() end, "127.0.0.1", 0)
      asyncio.create_task(async(function()
        local guard <close> = setmetatable({}, { __close = function()
          asyncio.parent:send("closed")
        end })
        local ok, err = pcall(function()
          asyncio.parent:send("ready") -- (a task cancelled before it starts runs nothing)
          await asyncio.sleep(3600)
        end)
        asyncio.parent:send(tostring(err))
        error(err, 0)
      end))
    ]]))
    assert.are.equal("ready", within(5, w:recv()))
    w:terminate()
    assert.is_true(CancelledError:is(support.raises(function() within(5, w:wait()) end)))
    assert.matches("CancelledError", within(5, w:recv()))
    assert.are.equal("closed", within(5, w:recv()))
    assert.is_nil(within(5, w:recv()))
  end)

  it("happens on <close> of a Worker, which waits for it", function()
    local w
    do
      local worker <close> = within(5, asyncio.start_worker(script "while true do end"))
      w = worker
    end
    assert.matches("ended", tostring(w))
  end)

  it("joins every worker when the program ends or gets Ctrl-C", function()
    local path = script [[
      asyncio.parent:send("up")
      while true do end
    ]]
    local out, status = support.run_alua(([[
      local ws = {}
      for i = 1, 3 do ws[i] = await asyncio.start_worker(%q) end
      for i = 1, 3 do assert(await ws[i]:recv() == "up") end
      print("started")
      error("the main chunk fails")
    ]]):format(path))
    assert.matches("^started\n.*the main chunk fails", out)
    assert.are.equal(1, status)

    local p = await(asyncio.create_subprocess_exec(os.getenv("ALUA_BIN") or "build/bin/alua", "-e",
      ([[local w = await asyncio.start_worker(%q)
         assert(await w:recv() == "up")
         print("started") io.stdout:flush()
         await asyncio.to_thread(function() while true do end end)]]):format(path),
      { stdout = asyncio.PIPE, stderr = asyncio.PIPE }))
    assert.are.equal("started\n", within(10, p.stdout:readline()))
    p:send_signal("SIGINT")
    -- stderr read to its end: what a sanitizer says about the threads' end is there
    local _, err = within(10, p:communicate())
    assert.are.equal(130, p.returncode, err)
    assert.matches("KeyboardInterrupt\n$", err)
    assert.is_nil(support.sanitizer_report(err), err)
  end)

  -- The kernel gives a signal sent to the process to any thread that does not block it,
  -- and alua's Ctrl-C handler hooks the main lua_State, which only the main thread may do.
  it("Ctrl-C reaches the main thread only, while a worker, to_thread and libuv's pool are busy", function()
    local path = script [[
      asyncio.parent:send("up")
      while true do end
    ]]
    local fifo = dir .. "/held_pool.fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    -- UV_THREADPOOL_SIZE=1: libuv's one thread is held in the open of a FIFO nobody writes
    -- to yet, to_thread's thread and the worker's spin
    local p = await(asyncio.create_subprocess_exec("env", "UV_THREADPOOL_SIZE=1",
      os.getenv("ALUA_BIN") or "build/bin/alua", "-e",
      ([[local w = await asyncio.start_worker(%q)
         assert(await w:recv() == "up")
         local held = asyncio.create_task(asyncio.fs.open(%q))
         local job = asyncio.to_thread(function() while true do end end)
         await asyncio.sleep(0)
         print("started") io.stdout:flush()
         await job]]):format(path, fifo),
      { stdout = asyncio.PIPE, stderr = asyncio.PIPE }))
    assert.are.equal("started\n", within(10, p.stdout:readline()))

    local tasks = ("/proc/%d/task/"):format(p.pid)
    local threads, takers = 0, {}
    for _, entry in ipairs(within(10, asyncio.fs.scandir(tasks))) do
      local status = read_file(tasks .. entry.name .. "/status") or ""
      local blocked = tonumber(status:match("SigBlk:%s*(%x+)") or "0", 16)
      threads = threads + 1
      if tonumber(entry.name) ~= p.pid and blocked & (1 << (2 - 1)) == 0 then -- SIGINT is 2
        takers[#takers + 1] = entry.name .. " " .. (status:match("Name:%s*([^\n]*)") or "?")
      end
    end
    assert.is_true(threads >= 4, "main, the worker, to_thread's and libuv's threads: " .. threads)
    assert.are.same({}, takers, "threads other than the main one that take SIGINT")

    p:send_signal("SIGINT")
    local release = await(asyncio.create_subprocess_exec("sh", "-c", ': > "$1"', "sh", fifo))
    local released = pcall(within, 10, release:wait())
    if not released then release:kill() end
    local _, err = within(10, p:communicate())
    assert.is_true(released, "the FIFO was never opened for reading")
    assert.are.equal(130, p.returncode, err)
    assert.matches("KeyboardInterrupt\n$", err)
    assert.is_nil(support.sanitizer_report(err), err)
  end)
end)

describe("to_thread", function()
  it("runs a function with copies of its arguments on another thread", function()
    local a, b, c = await(asyncio.to_thread(function(t, n)
      return t.x + n, math.type(n), _G.asyncio ~= nil
    end, { x = 1 }, 2.0))
    assert.are.equal(3.0, a)
    assert.are.equal("float", b)
    assert.is_true(c)
  end)

  it("runs module:function, the module required once per thread and kept", function()
    assert.are.equal("ababab", await(asyncio.to_thread("string:rep", "ab", 3)))
    for _ = 1, 8 do
      local calls, loads = await(asyncio.to_thread("tests.to_thread_module:count"))
      assert.are.equal(1, loads)
      assert.is_true(calls >= 1)
    end
  end)

  it("runs up to cpu_count calls at once", function()
    if asyncio.cpu_count() < 2 then return end
    -- each call waits for the other's file: on a single thread they would never both end
    local function meet(mine, theirs)
      local f = io.open(mine, "w") f:close()
      local start = asyncio.get_running_loop():time()
      while not io.open(theirs) do
        if asyncio.get_running_loop():time() - start > 5 then return "alone" end
      end
      return "met"
    end
    local a, b = dir .. "/meet_a", dir .. "/meet_b"
    assert.are.same({ "met", "met" }, { within(10, asyncio.gather(
      asyncio.to_thread(meet, a, b), asyncio.to_thread(meet, b, a))) })
  end)

  it("refuses functions with upvalues and values that cannot cross", function()
    local n = 1
    local err = support.raises(function() await(asyncio.to_thread(function() return n end)) end)
    assert.matches("to_thread: fn uses 'n', a local variable of an enclosing function", err)
    err = support.raises(function() await(asyncio.to_thread(print)) end)
    assert.matches("to_thread: fn is a C function", err)
    err = support.raises(function() await(asyncio.to_thread("nocolon")) end)
    assert.matches('to_thread: expected "module:function"', err)
    err = support.raises(function() await(asyncio.to_thread(function() end, print)) end)
    assert.matches("^[^:]*workers_spec.lua:%d+: to_thread: arg%[1%] is a function", err)
    err = support.raises(function() await(asyncio.start_worker("/dev/null", { print })) end)
    assert.matches("^[^:]*workers_spec.lua:%d+: start_worker: arg%[1%]%[1%] is a function", err)
    err = support.raises(function() await(asyncio.to_thread(function() return print end)) end)
    assert.matches("to_thread: result%[1%] is a function", err)
    err = support.raises(function() await(asyncio.to_thread("string:nothing")) end)
    assert.matches("to_thread: module 'string' has no function 'nothing'", err)
  end)

  it("raises the function's error with its class", function()
    local err = support.raises(function()
      await(asyncio.to_thread(function() error(asyncio.TimeoutError("slow")) end))
    end)
    assert.is_true(TimeoutError:is(err))
    assert.are.equal("slow", err.message)
    err = support.raises(function() await(asyncio.to_thread(function() error("plain", 0) end)) end)
    assert.are.equal("plain", err)
  end)

  it("interrupts a cancelled call that never yields, and ends once it has stopped", function()
    local marker = dir .. "/stopped"
    local task = asyncio.create_task(asyncio.to_thread(function(path)
      local note <close> = setmetatable({}, { __close = function()
        local f = io.open(path, "w") f:write("stopped") f:close()
      end })
      while true do end
    end, marker))
    await(asyncio.sleep(0.05))
    task:cancel()
    local err = support.raises(function() within(5, task) end)
    assert.is_true(CancelledError:is(err))
    assert.are.equal("stopped", read_file(marker)) -- it had stopped when the await ended
    -- every thread of the pool is free again
    local jobs, expected = {}, {}
    for i = 1, asyncio.cpu_count() * 2 do
      jobs[i] = asyncio.to_thread(function(x) return x end, i)
      expected[i] = i
    end
    assert.are.same(expected, { within(5, asyncio.gather(table.unpack(jobs))) })
  end)

  it("is interrupted by wait_for's timeout", function()
    local t0 = asyncio.get_running_loop():time()
    local err = support.raises(function()
      await(asyncio.wait_for(asyncio.to_thread(function() while true do end end), 0.1))
    end)
    assert.is_true(TimeoutError:is(err))
    assert.is_true(asyncio.get_running_loop():time() - t0 < 5 * support.SLOWDOWN)
  end)

  it("drops a queued call that is cancelled before it starts", function()
    local spin = {}
    for i = 1, asyncio.cpu_count() do
      spin[i] = asyncio.create_task(asyncio.to_thread(function() while true do end end))
    end
    local queued = asyncio.create_task(asyncio.to_thread(function() return "ran" end))
    await(asyncio.sleep(0.05))
    queued:cancel()
    assert.is_true(CancelledError:is(support.raises(function() within(5, queued) end)))
    for _, t in ipairs(spin) do t:cancel() end
    for _, t in ipairs(spin) do pcall(within, 5, t) end
    for _, t in ipairs(spin) do assert.is_true(t:cancelled()) end
  end)
end)
