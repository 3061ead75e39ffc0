-- cpu_scaling.lua — workload S: two pure-Lua jobs of about 0.5 s each through
-- asyncio.to_thread, one after the other and then at once (gather).
-- usage: alua cpu_scaling.lua [seconds]
--   prints sequential_s=... parallel_s=... ratio=... and, from /proc/self/task/*/schedstat
--   over the parallel run: cpu_s (CPU time of all the process's threads), runq_wait_s
--   (time they were ready to run but waited for a CPU another process had) and idle_s
--   (2 x parallel_s - cpu_s - runq_wait_s: time the two jobs' threads were neither
--   running nor ready: a lock serialising them would show here, as does the thread
--   that finished first waiting for the other; the loop thread, idle in poll, adds next
--   to nothing to the first two)
local asyncio = require "asyncio"
local target = tonumber(arg[1]) or 0.5

local function job(n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

-- Sums of on-CPU and run-queue-wait nanoseconds over this process's threads (nil where
-- /proc has no schedstat).
local function schedstat()
  local ok, tasks = pcall(await, asyncio.fs.scandir("/proc/self/task"))
  if not ok then return nil end
  local cpu, wait = 0, 0
  for _, t in ipairs(tasks) do
    local f = io.open("/proc/self/task/" .. t.name .. "/schedstat")
    if f then
      local c, w = f:read("n", "n")
      f:close()
      cpu, wait = cpu + (c or 0), wait + (w or 0)
    end
  end
  return cpu, wait
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
  local cpu0, wait0 = schedstat()
  t0 = loop:time()
  local a, b = await(asyncio.gather(asyncio.to_thread(job, n), asyncio.to_thread(job, n)))
  local parallel = loop:time() - t0
  local cpu1, wait1 = schedstat()
  assert(a == b)
  local extra = ""
  if cpu0 and cpu1 then
    local cpu, wait = (cpu1 - cpu0) / 1e9, (wait1 - wait0) / 1e9
    extra = string.format(" cpu_s=%.3f runq_wait_s=%.3f idle_s=%.3f", cpu, wait,
      math.max(0, 2 * parallel - cpu - wait))
  end
  print(string.format("sequential_s=%.3f parallel_s=%.3f ratio=%.3f%s", sequential, parallel,
    parallel / sequential, extra))
end)
