-- stress_peers_spec.lua — servers against peers that misbehave: slow readers (memory
-- stays bounded), resets, half-closes, garbage and silence; a handler that fails on every
-- connection. After each storm the server still serves, and no descriptor or task leaks.
-- Sizes: STRESS=full, default, quick (under valgrind).

local support = require "tests.support"
local sleep, create_task, gather = asyncio.sleep, asyncio.create_task, asyncio.gather
local OSError = asyncio.OSError
local fs = asyncio.fs

local MODE = os.getenv("STRESS") or "default"
local SCALE = ({ full = 10, quick = 0.05 })[MODE] or 1
local function count(n) return math.max(2, math.floor(n * SCALE)) end

local SEED = tonumber(os.getenv("STRESS_SEED")) or os.time()
math.randomseed(SEED)
local random = math.random

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

-- AddressSanitizer keeps freed memory in quarantine: RSS means nothing there, the Lua
-- heap still does
local UNDER_ASAN = os.getenv("ASAN_OPTIONS") ~= nil

local function fd_count() return #await(fs.scandir("/proc/self/fd")) end

local function settle_fds(base, what)
  local n
  for _ = 1, 200 do
    collectgarbage()
    await(sleep(0.005))
    n = fd_count()
    if n <= base then break end
  end
  assert.are.equal(base, n, "descriptors leaked by " .. what)
end

local function port_of(server) return select(2, server:sockname()) end

-- The server still answers a well-behaved client.
local function assert_serving(port)
  local r, w = await(asyncio.open_connection("127.0.0.1", port))
  w:write("PING\n")
  assert.are.equal("PONG\n", await(asyncio.wait_for(r:readline(), 5)))
  w:close()
  await(w:wait_closed())
end

-- Runs `n` client bodies, `width` at a time.
local function run_clients(n, width, body)
  local sem = asyncio.Semaphore(width)
  local tasks = {}
  for i = 1, n do
    await(sem:acquire())
    tasks[i] = create_task(function()
      local ok, err = pcall(body, i)
      sem:release()
      if not ok then error(err, 0) end
    end)
  end
  for _, t in ipairs(tasks) do await(t) end
end

local in_task = support.in_task

setup(function()
  -- libuv's spare descriptor (for EMFILE) is opened with the first socket: not a leak
  await(create_task(function()
    local s = await(asyncio.start_server(function(_, w) w:close() end, "127.0.0.1", 0))
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(s)))
    w:close()
    s:close()
    await(s:wait_closed())
  end))
end)

after_each(function()
  collectgarbage()
  assert.are.equal(0, support.cancel_leftovers(), "tasks left over")
end)

describe("slow readers", function()
  it("a fast writer and a slow reader: memory stays bounded", in_task(function()
    local TOTAL = count(128) * 1024 * 1024
    local chunk = ("s"):rep(64 * 1024)
    local server = await(asyncio.start_server(function(_, w)
      for _ = 1, TOTAL // #chunk do
        w:write(chunk)
        await(w:drain())
        assert.is_true(w:get_write_buffer_size() <= 64 * 1024 + #chunk, "the write buffer grew past high water")
      end
      w:close()
    end, "127.0.0.1", 0, { limit = 16 * 1024 }))
    collectgarbage()
    local before, peak = rss_kb(), 0
    local heap_before, heap_peak = collectgarbage("count"), 0
    local r, w = await(asyncio.open_connection("127.0.0.1", port_of(server), { limit = 16 * 1024 }))
    local got, reads = 0, 0
    while true do
      local data = await(r:read(4096))
      if data == "" then break end
      got = got + #data
      reads = reads + 1
      if reads % 256 == 0 then
        await(sleep(0.001))
        peak = math.max(peak, rss_kb())
        heap_peak = math.max(heap_peak, collectgarbage("count"))
      end
    end
    w:close()
    server:close()
    await(server:wait_closed())
    assert.are.equal(TOTAL, got)
    -- bounded: the whole transfer is 128 MB, the growth must stay far below it
    assert.is_true(heap_peak - heap_before < 32 * 1024,
      ("the Lua heap grew by %d KB while %d MB went through a slow reader"):format(math.floor(heap_peak - heap_before), TOTAL >> 20))
    if not UNDER_ASAN then
      assert.is_true(peak - before < 32 * 1024,
        ("RSS grew by %d KB while %d MB went through a slow reader"):format(peak - before, TOTAL >> 20))
    end
  end))

  it("a reader that never reads: the writer's buffer stops at high water", in_task(function()
    local base = fd_count()
    local hold = asyncio.Event()
    local server = await(asyncio.start_server(function(_, w)
      await(hold:wait()) -- never reads
      w:close()
    end, "127.0.0.1", 0))
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(server)))
    w:set_write_buffer_limits(256 * 1024)
    local chunk = ("n"):rep(32 * 1024)
    local writer = create_task(function()
      while true do
        w:write(chunk)
        await(w:drain())
      end
    end)
    await(sleep(0.2))
    local size = w:get_write_buffer_size()
    assert.is_true(size <= 256 * 1024 + #chunk, "buffered " .. size)
    local before = UNDER_ASAN and collectgarbage("count") or rss_kb()
    await(sleep(0.2))
    local after = UNDER_ASAN and collectgarbage("count") or rss_kb()
    assert.is_true(after - before < 4096, "memory grows while the writer waits")
    writer:cancel()
    hold:set()
    w:close()
    server:close()
    await(server:wait_closed())
    settle_fds(base, "a blocked writer")
  end))
end)

describe("misbehaving peers", function()
  -- The server under test: PING/PONG, ECHO <n> then n bytes, BIG (1 MB reply); it
  -- reads lines with a small limit and gives up on a silent peer after 100 ms.
  local outcomes
  local function start()
    outcomes = {}
    local function note(k) outcomes[k] = (outcomes[k] or 0) + 1 end
    return await(asyncio.start_server(function(r, w)
      local ok, err = pcall(function()
        local _ <close> = asyncio.timeout(0.5)
        while true do
          local line = await(r:readline())
          if line == "" then break end
          if line == "PING\n" then
            w:write("PONG\n")
          elseif line:match("^ECHO %d+\n$") then
            w:write(await(r:readexactly(tonumber(line:match("%d+")))))
          elseif line == "BIG\n" then
            for _ = 1, 16 do
              w:write(("b"):rep(64 * 1024))
              await(w:drain())
            end
          else
            w:write("ERR\n")
          end
          await(w:drain())
        end
      end)
      note(ok and "clean" or (type(err) == "table" and err.type or "other"))
      w:close()
    end, "127.0.0.1", 0, { limit = 1024 }))
  end

  it("resets: peers that close with unread data (RST) both ways", in_task(function()
    local base = fd_count()
    local server = start()
    local port = port_of(server)
    local N = count(300)
    run_clients(N, 32, function(i)
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      if i % 2 == 0 then
        -- ask for a large reply, take a little, close: the kernel resets the connection
        w:write("BIG\n")
        await(r:readexactly(random(1, 70000)))
      else
        -- send more than the server reads, then reset with its reply unread
        w:write("PING\n" .. ("junk"):rep(random(1, 5000)))
        await(r:readline())
      end
      w:close()
    end)
    assert_serving(port)
    server:close()
    await(server:wait_closed())
    settle_fds(base, "reset connections")
  end))

  it("half-closes: requests ended by write_eof, replies read to the end", in_task(function()
    local base = fd_count()
    local server = start()
    local port = port_of(server)
    local N = count(300)
    run_clients(N, 32, function(i)
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      local payload = ("%d"):format(i):rep(random(1, 3000))
      w:write(("PING\nECHO %d\n"):format(#payload) .. payload)
      w:write_eof()
      assert.are.equal("PONG\n" .. payload, await(asyncio.wait_for(r:read(), 5)))
      assert.is_true(r:at_eof())
      w:close()
    end)
    assert.are.equal(N, outcomes.clean, "every half-closed request is served to its end")
    assert_serving(port)
    server:close()
    await(server:wait_closed())
    settle_fds(base, "half-closed connections")
  end))

  it("Unix socket peers: half-closes, and the names of their unnamed ends", in_task(function()
    local base = fd_count()
    local path = os.tmpname()
    os.remove(path)
    local names = {}
    local server = await(asyncio.start_unix_server(function(r, w)
      names[#names + 1] = w:get_extra_info("peername")
      w:write(await(r:read()))
      w:close()
    end, path))
    run_clients(count(100), 16, function(i)
      local r, w = await(asyncio.open_unix_connection(path))
      assert.are.equal("", w:get_extra_info("sockname")) -- a client's end has no name
      assert.are.equal(path, w:get_extra_info("peername"))
      w:write(("u%d"):format(i))
      w:write_eof()
      assert.are.equal(("u%d"):format(i), await(asyncio.wait_for(r:read(), 5)))
      w:close()
    end)
    server:close()
    await(server:wait_closed())
    assert.are.equal(count(100), #names)
    assert.are.equal("", names[1])
    settle_fds(base, "Unix socket connections")
  end))

  it("garbage, overlong lines, truncated requests and silence", in_task(function()
    local base = fd_count()
    local server = start()
    local port = port_of(server)
    local N = count(400)
    local kinds = {
      function(w) -- random bytes
        local t = {}
        for k = 1, random(1, 4096) do t[k] = string.char(random(0, 255)) end
        w:write(table.concat(t))
      end,
      function(w) w:write(("x"):rep(random(1025, 20000))) end,  -- a line over the limit
      function(w) w:write(("y"):rep(2000) .. "\n") end,       -- a long line, ended
      function(w) w:write("ECHO 1000\nshort") end,               -- truncated body
      function(w) w:write("ECHO 99999999999999999999\n") end,   -- absurd length
      function(w) w:write("\r\n\r\n\0\0\0\n") end,
      function() end,                                            -- silence (SILENT)
      function(w) w:write("PI") end,                             -- half a line, then gone
    }
    local SILENT = 7
    run_clients(N, 48, function(i)
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      local kind = i % #kinds + 1
      kinds[kind](w)
      if kind ~= SILENT and random(2) == 1 then w:write_eof() end
      -- read what the server says until it gives up; a reset is an answer too
      pcall(function() await(asyncio.wait_for(r:read(), 5)) end)
      w:close()
    end)
    assert.is_true((outcomes.LimitOverrunError or 0) > 0, "no overlong line was refused")
    assert.is_true((outcomes.TimeoutError or 0) > 0, "no silent peer was timed out")
    assert_serving(port)
    server:close()
    await(server:wait_closed())
    settle_fds(base, "garbage")
  end))
end)

describe("a handler that fails on every connection", function()
  it("the server keeps accepting and reports each failure", in_task(function()
    local N = count(500)
    local alua = os.getenv("ALUA_BIN") or "build/bin/alua"
    local p = await(asyncio.create_subprocess_exec(alua, "-e", ([[
      local n = 0
      local server = await(asyncio.start_server(function(r, w)
        n = n + 1
        if n %% 3 == 0 then await(r:readline()) end
        if n %% 3 == 1 then w:write("partial") end
        error("handler failure " .. n)
      end, "127.0.0.1", 0))
      print(select(2, server:sockname()))
      io.stdout:flush()
      while n < %d do await(asyncio.sleep(0.01)) end
      print("accepted " .. n, server:is_serving())
      server:close()
      await(server:wait_closed())
    ]]):format(N), { stdout = asyncio.PIPE, stderr = asyncio.PIPE }))
    local port = tonumber(await(p.stdout:readline()))
    local stderr = create_task(function() return await(p.stderr:read()) end)
    local ended = 0
    run_clients(N, 32, function(i)
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      w:write("x\n")
      -- the failed handler's writer is closed: the connection ends (reset, when the
      -- server closed with our line unread)
      local ok, err = pcall(function() await(asyncio.wait_for(r:read(), 10)) end)
      if ok or asyncio.ConnectionError:is(err) then ended = ended + 1 end
      w:close()
    end)
    assert.are.equal(N, ended, "connections of failed handlers left open")
    assert.are.equal("accepted " .. N .. "\ttrue\n", await(p.stdout:readline()))
    assert.are.equal(0, await(p:wait()))
    local err = await(stderr)
    local reports = 0
    for _ in err:gmatch("Unhandled error in a client_connected_cb") do reports = reports + 1 end
    assert.are.equal(N, reports, "each failure is reported")
    assert.is_truthy(err:find("handler failure " .. N, 1, true))
  end))
end)
