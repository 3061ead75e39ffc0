-- await_fn.lua — workload F: one task awaiting a trivial async function N times (the
-- commonest operation of async code: calling a coroutine function and awaiting it).
-- usage: alua await_fn.lua [N]   prints ns_per_await=...
local asyncio = require "asyncio"
local N = tonumber(arg[1]) or 1000000

local async function add_one(x) return x + 1 end

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local sum = 0
  for i = 1, N do sum = sum + await add_one(i) end
  local t1 = loop:time()
  assert(sum == N * (N + 1) // 2 + N, "wrong sum")
  print(string.format("ns_per_await=%.1f", (t1 - t0) * 1e9 / N))
end)

asyncio.run(main())
