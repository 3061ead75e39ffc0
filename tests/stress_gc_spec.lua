-- stress_gc_spec.lua — full collections forced between every step while I/O is pending:
-- Lua objects (streams, servers, tasks, futures, files, processes, UDP sockets, requests)
-- dropped and collected while libuv still holds their handles or requests. No handle or
-- callback may then refer to a collected object (ASan and valgrind runs of this file are
-- the real check), no descriptor may leak, and work nobody references still completes.
-- Sizes: STRESS=full, default, quick (under valgrind).

local support = require "tests.support"
local sleep, create_task = asyncio.sleep, asyncio.create_task
local fs = asyncio.fs

local MODE = os.getenv("STRESS") or "default"
local ROUNDS = ({ full = 200, quick = 3 })[MODE] or 16

local function gc()
  collectgarbage()
  collectgarbage()
end

-- Between the steps: a full collection, then one turn of the loop, then another.
local function step()
  gc()
  await(sleep(0))
  gc()
end

local function fd_count()
  return #await(fs.scandir("/proc/self/fd"))
end

-- Runs fn in a task whose every 100 VM instructions also collect (the hook is per thread).
local function in_gc_task(fn)
  return function()
    return await(create_task(function()
      debug.sethook(function() collectgarbage("step", 0) end, "", 100)
      local ok, err = pcall(fn)
      debug.sethook()
      if not ok then error(err, 0) end
    end))
  end
end

-- Lets closes finish (their callbacks run on later turns), then checks the descriptors.
local function settle_fds(base, what)
  local n
  for _ = 1, 100 do
    step()
    n = fd_count()
    if n <= base then break end
    await(sleep(0.01))
  end
  assert.are.equal(base, n, "descriptors leaked by " .. what)
end

local function server_port(server) return select(2, server:sockname()) end

setup(function()
  -- the incremental collector never pauses: it is at work during every allocation
  collectgarbage("incremental", 0, 400)
  -- what the first socket of the process opens once (libuv's spare descriptor for
  -- EMFILE) is not a leak: open it before any count
  await(create_task(function()
    local s = await(asyncio.start_server(function(_, w) w:close() end, "127.0.0.1", 0))
    local _, w = await(asyncio.open_connection("127.0.0.1", server_port(s)))
    w:close()
    s:close()
    await(s:wait_closed())
  end))
end)
teardown(function() collectgarbage("incremental", 200, 100) end)

after_each(function()
  gc()
  assert.are.equal(0, support.cancel_leftovers(), "tasks left over")
end)

describe("collections while I/O is pending", function()
  it("a stream collected with a read pending, then written to by its peer", in_gc_task(function()
    local base = fd_count()
    for _ = 1, ROUNDS do
      local peer
      local server = await(asyncio.start_server(function(_, w) peer = w end, "127.0.0.1", 0))
      do
        local r, w = await(asyncio.open_connection("127.0.0.1", server_port(server)))
        local reader = create_task(function() return await(r:readline()) end)
        step()
        reader:cancel()
        step()
      end -- r, w, reader: garbage now, the read was pending
      step()
      while peer == nil do step() end
      peer:write(("x"):rep(100000) .. "\n")
      step()
      peer:close()
      peer = nil
      step()
      server:close()
      server = nil
      step()
    end
    settle_fds(base, "streams collected mid-read")
  end))

  it("a writer collected with writes queued still delivers them, then closes", in_gc_task(function()
    local base = fd_count()
    for _ = 1, math.max(1, ROUNDS // 2) do
      local r_peer
      local server = await(asyncio.start_server(function(r) r_peer = r end, "127.0.0.1", 0))
      local payload = ("0123456789abcdef"):rep(512 * 1024) -- 8 MB: more than the sockets take
      do
        local _, w = await(asyncio.open_connection("127.0.0.1", server_port(server)))
        w:write(payload)
        assert.is_true(w:get_write_buffer_size() > 0, "the write should have been queued")
        step()
      end -- dropped with a write in flight and more queued
      step()
      while r_peer == nil do step() end
      local got, n = {}, 0
      while true do
        local data = await(r_peer:read(65536))
        if data == "" then break end
        n = n + 1
        got[n] = data
        if n % 16 == 0 then step() end
      end
      assert.is_true(table.concat(got) == payload, "the data written before the collection was lost")
      r_peer = nil
      server:close()
      server = nil
      step()
    end
    settle_fds(base, "writers collected with writes queued")
  end))

  it("a server nobody references keeps serving through collections", in_gc_task(function()
    local base = fd_count()
    for _ = 1, ROUNDS do
      local port
      local weak = setmetatable({}, { __mode = "v" })
      do
        local server = await(asyncio.start_server(function(r, w)
          w:write(await(r:readline()))
          await(sleep(0.001))
          w:close()
        end, "127.0.0.1", 0))
        port = server_port(server)
        weak[1] = server
      end
      step()
      -- as in Python, the loop holds a server that is serving: it is not collected
      assert.is_not_nil(weak[1], "a serving server was collected")
      local conns = {}
      for i = 1, 5 do
        local r, w = await(asyncio.open_connection("127.0.0.1", port))
        w:write("hi " .. i .. "\n")
        conns[i] = r
        step()
      end
      for i, r in ipairs(conns) do assert.are.equal("hi " .. i .. "\n", await(r:readline())) end
      conns = nil
      step()
      weak[1]:close()
      step()
    end
    settle_fds(base, "servers")
  end))

  it("connections and name lookups cancelled and collected while pending", in_gc_task(function()
    local base = fd_count()
    local server = await(asyncio.start_server(function(r, w)
      local line = await(r:readline())
      w:write(line)
      w:close()
    end, "127.0.0.1", 0))
    local port = server_port(server)
    for _ = 1, ROUNDS do
      local tasks = {
        create_task(function() return await(asyncio.open_connection("127.0.0.1", port)) end),
        create_task(function() return await(asyncio.open_connection("localhost", port)) end),
        create_task(function() return await(asyncio.getaddrinfo("localhost", port)) end),
      }
      step()
      for _, t in ipairs(tasks) do t:cancel() end
      tasks = nil
      step()
      -- and a connection nobody holds, used by a task nobody holds
      local done = asyncio.Event()
      create_task(function()
        local r, w = await(asyncio.open_connection("127.0.0.1", port))
        step()
        w:write("ping\n")
        assert.are.equal("ping\n", await(r:readline()))
        done:set()
      end)
      step()
      await(asyncio.wait_for(done:wait(), 5))
    end
    server:close()
    await(server:wait_closed())
    settle_fds(base, "cancelled connections")
  end))

  it("UDP sockets collected with a receive pending, then sent to", in_gc_task(function()
    local base = fd_count()
    local sender = await(asyncio.open_udp({ local_addr = { "127.0.0.1", 0 } }))
    for _ = 1, ROUNDS do
      local port
      do
        local u = await(asyncio.open_udp({ local_addr = { "127.0.0.1", 0 } }))
        port = select(2, u:sockname())
        local t = create_task(function() return await(u:recvfrom()) end)
        step()
        t:cancel()
        step()
      end
      step()
      sender:sendto("hello", "127.0.0.1", port)
      step()
    end
    sender:close()
    settle_fds(base, "UDP sockets collected")
  end))

  it("files and file requests collected while the thread pool works on them", in_gc_task(function()
    local base = fd_count()
    local dir = os.tmpname()
    os.remove(dir)
    await(fs.mkdir(dir))
    local path = dir .. "/data"
    await(fs.write_file(path, ("z"):rep(1 << 20)))
    for _ = 1, ROUNDS do
      local tasks = {
        create_task(function() return await(fs.read_file(path)) end),
        create_task(function() return await(fs.open(path, "r")) end),
        create_task(function() return await(fs.stat(path)) end),
        create_task(function() return await(fs.scandir(dir)) end),
      }
      for i = 1, #tasks do
        if i % 2 == 0 then tasks[i]:cancel() end
      end
      step()
      for _, t in ipairs(tasks) do t:cancel() end
      tasks = nil
      step()
      do
        local f = await(fs.open(path, "r")) -- never closed: collected
        local t = create_task(function() return await(f:read(4096)) end)
        step()
      end
      step()
    end
    for _ = 1, 20 do step() await(sleep(0.005)) end
    await(fs.unlink(path))
    await(fs.rmdir(dir))
    settle_fds(base, "files collected")
  end))

  it("processes and their pipes collected while the child runs", in_gc_task(function()
    local base = fd_count()
    for i = 1, math.max(1, ROUNDS // 4) do
      do
        local p = await(asyncio.create_subprocess_exec("sh", "-c", "sleep 0.05; echo out; echo err >&2",
          { stdout = asyncio.PIPE, stderr = asyncio.PIPE, stdin = asyncio.PIPE }))
        local t = create_task(function() return await(p.stdout:readline()) end)
        step()
        if i % 2 == 0 then t:cancel() end
        step()
      end
      step()
    end
    -- what the children held is closed once they exit and their pipes reach the end
    for _ = 1, 40 do
      step()
      await(sleep(0.01))
    end
    settle_fds(base, "processes collected")
  end))

  it("a connection its handler dropped unclosed is collected before the loop gives up", function()
    -- nothing but garbage holds the server's end open: wait_closed needs a collection,
    -- which the loop runs before it would call the wait hopeless
    for _ = 1, 3 do
      local server = await(asyncio.start_server(function() end, "127.0.0.1", 0))
      local _, w = await(asyncio.open_connection("127.0.0.1", server_port(server)))
      w:close()
      server:close()
      await(server:wait_closed())
    end
  end)

  it("timers, futures and tasks nobody references still complete", in_gc_task(function()
    local fired, finished = 0, 0
    local N = ROUNDS * 50
    local loop = asyncio.get_running_loop()
    for i = 1, N do
      loop:call_later(0.001 * (i % 5), function() fired = fired + 1 end)
      create_task(function()
        local f = asyncio.Future()
        loop:call_soon(function() f:set_result(i) end)
        step()
        assert.are.equal(i, await(f))
        await(sleep(0.001 * (i % 3)))
        finished = finished + 1
      end)
      if i % 25 == 0 then step() end
    end
    local deadline = loop:time() + 10
    while (fired < N or finished < N) and loop:time() < deadline do
      step()
      await(sleep(0.002))
    end
    assert.are.equal(N, fired, "timers whose handles were collected did not fire")
    assert.are.equal(N, finished, "tasks nobody referenced did not finish")
  end))
end)
