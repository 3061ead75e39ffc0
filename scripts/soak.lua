-- soak.lua — an echo server under constant load for a while, printing its memory (RSS,
-- Lua heap) and open descriptors every few seconds; both must stay flat.
--   alua scripts/soak.lua [minutes (10)] [seconds between reports (5)]
-- The load runs in a child alua (this script with --load): persistent connections echoing
-- messages of every size, connections opened and closed all the time, and peers that
-- reset, half-close or go silent. At the end it compares the first report after warm-up
-- with the last (both under load), and the descriptors once the load is gone with those
-- before it came, and exits 1 if memory or descriptors grew.

local PERSISTENT, CHURNERS = 64, 8
local PAUSE = 0.002 -- between two messages of a client: steady load, not the most possible

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local function fd_count() return #await(asyncio.fs.scandir("/proc/self/fd")) - 1 end

-- ---- the load (child process) ------------------------------------------------------

local function load(port, seconds)
  local loop = asyncio.get_running_loop()
  local deadline = loop:time() + seconds
  local stats = { msgs = 0, conns = 0, errors = 0 }
  local rnd = math.random

  local function echo_once(r, w, size)
    local msg = ("%08d"):format(size):rep(size // 8 + 1):sub(1, size) .. "\n"
    w:write(msg)
    await(w:drain())
    assert(await(r:readexactly(#msg)) == msg, "echo differs")
    stats.msgs = stats.msgs + 1
  end

  local function persistent()
    while loop:time() < deadline do
      local ok = pcall(function()
        local r, w = await(asyncio.open_connection("127.0.0.1", port))
        stats.conns = stats.conns + 1
        for _ = 1, rnd(50, 500) do
          if loop:time() >= deadline then break end
          echo_once(r, w, rnd(2) == 1 and rnd(1, 200) or rnd(1, 64 * 1024))
          await(asyncio.sleep(PAUSE))
        end
        w:close()
        await(w:wait_closed())
      end)
      if not ok then stats.errors = stats.errors + 1 end
    end
  end

  local misbehave = {
    function(_, w) w:close() end,                                     -- gone at once
    function(_, w) w:write("half a line") w:write_eof() end,          -- half-close
    function(r, w) w:write(("x"):rep(100000) .. "\n") await(r:read(10)) w:close() end, -- reset
    function(_, w) w:write(string.char(0, 255, 13, 10, 0)) w:close() end, -- garbage
  }

  local function churn()
    while loop:time() < deadline do
      pcall(function()
        local r, w = await(asyncio.open_connection("127.0.0.1", port))
        stats.conns = stats.conns + 1
        if rnd(4) == 1 then
          misbehave[rnd(#misbehave)](r, w)
        else
          echo_once(r, w, rnd(1, 4096))
        end
        w:close()
      end)
      await(asyncio.sleep(PAUSE))
    end
  end

  local tasks = {}
  for i = 1, PERSISTENT do tasks[#tasks + 1] = asyncio.create_task(persistent) end
  for i = 1, CHURNERS do tasks[#tasks + 1] = asyncio.create_task(churn) end
  for _, t in ipairs(tasks) do await(t) end
  print(("load: %d messages echoed on %d connections, %d broken by the load itself"):format(
    stats.msgs, stats.conns, stats.errors))
end

-- ---- the server (this process) -----------------------------------------------------

local function soak(minutes, every)
  local loop = asyncio.get_running_loop()
  local served, bytes, open_now = 0, 0, 0
  local server = await(asyncio.start_server(function(r, w)
    served = served + 1
    open_now = open_now + 1
    pcall(function()
      local _ <close> = w
      while true do
        local _ <close> = asyncio.timeout(5) -- a silent peer is dropped
        local line = await(r:readline())
        if line == "" then break end
        w:write(line)
        bytes = bytes + #line
        await(w:drain())
      end
    end)
    open_now = open_now - 1
  end, "127.0.0.1", 0, { limit = 128 * 1024 }))
  local port = select(2, server:sockname())
  local seconds = minutes * 60
  local alua = arg[-1] or "alua"
  local fds_before = fd_count()
  -- the load outlasts the last report a little: every report is under load
  local child = await(asyncio.create_subprocess_exec(alua, arg[0], "--load", tostring(port),
    tostring(seconds + 2 * every), { stdout = asyncio.PIPE }))

  print(("soak: echo server on port %d for %g min, %d persistent clients and %d churning"):format(
    port, minutes, PERSISTENT, CHURNERS))
  print("   time      RSS KB   Lua heap KB   fds   open   served    MB echoed")
  local t0 = loop:time()
  local samples = {}
  while loop:time() - t0 < seconds do
    await(asyncio.sleep(every))
    local s = { t = loop:time() - t0, rss = rss_kb(), heap = collectgarbage("count"), fds = fd_count(),
      open = open_now }
    samples[#samples + 1] = s
    print(("%6.0f s  %9d  %12.0f  %4d  %5d  %7d  %11.1f"):format(s.t, s.rss, s.heap, s.fds, s.open,
      served, bytes / 1e6))
    io.stdout:flush()
  end
  local summary = await(child.stdout:read())
  await(child:wait())
  io.write(summary)
  child = nil -- its pipe closes when collected
  while open_now > 0 do await(asyncio.sleep(0.1)) end
  collectgarbage()
  await(asyncio.sleep(0.1))
  local fds_after = fd_count()
  server:close()
  await(server:wait_closed())

  -- flat: from the first report after a warm-up (a tenth of the run; of a short run, half,
  -- up to 10 s: each connection's read buffer grows to twice its limit, 256 KiB here, only
  -- as messages of every size come, and RSS rose from 13.6 to 17.3 MB over the first 12 s
  -- of a 30 s run, flat after) to the last, RSS may not grow by more than 10% (+2 MB of
  -- noise); with the load gone, the descriptors are back to what they were before it
  local warm = math.max(seconds / 10, math.min(10, seconds / 2))
  local first = samples[#samples]
  for _, s in ipairs(samples) do
    if s.t >= warm then
      first = s
      break
    end
  end
  local last = samples[#samples]
  local rss_ok = last.rss <= first.rss * 1.1 + 2048
  if os.getenv("ASAN_OPTIONS") then
    -- under AddressSanitizer freed blocks sit in a quarantine (256 MB by default) before
    -- they are reused, so RSS grows by design until it fills: judge the Lua heap instead
    rss_ok = last.heap <= first.heap * 1.1 + 2048
  end
  local fds_ok = fds_after <= fds_before
  print(("start: RSS %d KB, %d fds (%d connections)   end: RSS %d KB, %d fds (%d connections)"):format(
    first.rss, first.fds, first.open, last.rss, last.fds, last.open))
  print(("descriptors without load: %d before, %d after"):format(fds_before, fds_after))
  print((rss_ok and fds_ok) and "flat" or "GREW")
  os.exit((rss_ok and fds_ok) and 0 or 1)
end

if arg[1] == "--load" then
  asyncio.run(load, tonumber(arg[2]), tonumber(arg[3]))
else
  asyncio.run(soak, tonumber(arg[1]) or 10, tonumber(arg[2]) or 5)
end
