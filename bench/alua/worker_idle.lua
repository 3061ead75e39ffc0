-- worker_idle.lua — workload I: K idle workers (each waiting on asyncio.parent:recv()):
-- start-up time of one (start_worker until its script runs) and resident memory of one.
-- usage: alua worker_idle.lua [K]   prints start_ms=... rss_kib_per_worker=...
local asyncio = require "asyncio"

if asyncio.parent then
  asyncio.parent:send("up")
  await(asyncio.parent:recv())
  return
end

local K = tonumber(arg[1]) or 20

local function rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

asyncio.run(function()
  local loop = asyncio.get_running_loop()
  local warm = await(asyncio.start_worker(arg[0])) -- the first thread's one-time costs
  await(warm:recv())
  collectgarbage()
  local before = rss_kib()
  local workers, total = {}, 0
  for i = 1, K do
    local t0 = loop:time()
    workers[i] = await(asyncio.start_worker(arg[0]))
    assert(await(workers[i]:recv()) == "up")
    total = total + (loop:time() - t0)
  end
  collectgarbage()
  local after = rss_kib()
  print(string.format("start_ms=%.3f rss_kib_per_worker=%.0f", total * 1e3 / K, (after - before) / K))
  warm:send("stop")
  for _, w in ipairs(workers) do w:send("stop") end
  for _, w in ipairs(workers) do await(w:wait()) end
end)
