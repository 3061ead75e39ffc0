-- timers.lua — workload C: N tasks each sleeping a delay of 0..1000 ms from the shared LCG.
-- usage: alua timers.lua [N] [MAX_MS]   prints wall_s=... bytes_per_task=... delay_sum_ms=...
local asyncio = require "asyncio"
local N = tonumber(arg[1]) or 100000
local MAX_MS = tonumber(arg[2]) or 1000

local function status_kb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s*(%d+)")
    if v then return tonumber(v) end
  end
end

-- the delay generator shared by every language: a 31-bit LCG, seed 42 (0..MAX_MS ms)
local state = 42
local function next_ms()
  state = (state * 1103515245 + 12345) & 0x7fffffff
  return state % (MAX_MS + 1)
end

local async function sleeper(d) await asyncio.sleep(d) end

local main = async(function()
  local loop = asyncio.get_running_loop()
  local base_kb = status_kb("VmRSS")
  local t0 = loop:time()
  local tasks, sum = {}, 0
  for i = 1, N do
    local ms = next_ms()
    sum = sum + ms
    tasks[i] = asyncio.create_task(sleeper(ms / 1000))
  end
  await(asyncio.gather(table.unpack(tasks)))
  local t1 = loop:time()
  local peak_kb = status_kb("VmHWM")
  print(string.format("wall_s=%.3f bytes_per_task=%.0f delay_sum_ms=%d", t1 - t0,
    (peak_kb - base_kb) * 1024 / N, sum))
end)

asyncio.run(main())
