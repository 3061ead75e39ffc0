-- switch.lua — workload B: T tasks each yielding M times with sleep(0).
-- usage: alua switch.lua [T] [M]   prints switches_per_s=...
local asyncio = require "asyncio"
local T = tonumber(arg[1]) or 1000
local M = tonumber(arg[2]) or 1000

local worker = async(function(m)
  for _ = 1, m do await(asyncio.sleep(0)) end
  return m
end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local tasks = {}
  for i = 1, T do tasks[i] = asyncio.create_task(worker(M)) end
  await(asyncio.gather(table.unpack(tasks)))
  local t1 = loop:time()
  print(string.format("switches_per_s=%.0f", T * M / (t1 - t0)))
end)

asyncio.run(main())
