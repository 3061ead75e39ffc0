-- to_thread.lua — workload T: N trivial asyncio.to_thread calls, one after another.
-- usage: alua to_thread.lua [N]   prints us_per_call=...
local asyncio = require "asyncio"
local N = tonumber(arg[1]) or 20000

local function add_one(x) return x + 1 end

asyncio.run(function()
  await(asyncio.to_thread(add_one, 0)) -- the pool's thread exists before timing starts
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local sum = 0
  for i = 1, N do sum = sum + await(asyncio.to_thread(add_one, i)) end
  local t1 = loop:time()
  assert(sum == N * (N + 1) // 2 + N, "wrong sum")
  print(string.format("us_per_call=%.2f", (t1 - t0) * 1e6 / N))
end)
