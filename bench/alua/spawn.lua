-- spawn.lua — workload A: create N tasks that each return their index; gather them all.
-- usage: alua spawn.lua [N]   prints ns_per_task=...
local asyncio = require "asyncio"
local N = tonumber(arg[1]) or 200000

local work = async(function(i) return i end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local tasks = {}
  for i = 1, N do tasks[i] = asyncio.create_task(work(i)) end
  local results = { await(asyncio.gather(table.unpack(tasks))) }
  local t1 = loop:time()
  assert(#results == N and results[1] == 1 and results[N] == N, "wrong results")
  print(string.format("ns_per_task=%.1f", (t1 - t0) * 1e9 / N))
end)

asyncio.run(main())
