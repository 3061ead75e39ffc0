-- cpu_scaling.lua — workload S: two pure-Lua jobs of about 0.5 s each through
-- asyncio.to_thread, one after the other and then at once (gather).
-- usage: alua cpu_scaling.lua [seconds]   prints sequential_s=... parallel_s=... ratio=...
local asyncio = require "asyncio"
local target = tonumber(arg[1]) or 0.5

local function job(n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

asyncio.run(function()
  local loop = asyncio.get_running_loop()
  -- calibrate on a pool thread: iterations for `target` seconds
  local n = 1000000
  while true do
    local t0 = loop:time()
    await(asyncio.to_thread(job, n))
    local dt = loop:time() - t0
    if dt > 0.1 then
      n = math.floor(n * target / dt)
      break
    end
    n = n * 4
  end
  local t0 = loop:time()
  await(asyncio.to_thread(job, n))
  await(asyncio.to_thread(job, n))
  local sequential = loop:time() - t0
  t0 = loop:time()
  local a, b = await(asyncio.gather(asyncio.to_thread(job, n), asyncio.to_thread(job, n)))
  local parallel = loop:time() - t0
  assert(a == b)
  print(string.format("sequential_s=%.3f parallel_s=%.3f ratio=%.3f", sequential, parallel,
    parallel / sequential))
end)
