-- waiter.lua — call-form twin of the conformance seed_waiter.lua: one waiter, three
-- customers who take 5, 10 and 1 "minutes" (hundredths of a second) to decide.
local asyncio = require "asyncio"
local MINUTE = 0.01

local take_order = async(function(name, minutes)
  await(asyncio.sleep(minutes * MINUTE))
  print(name .. " ordered after " .. minutes .. " minutes")
  return name
end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local a, b, c = await(asyncio.gather(
    take_order("Kohli", 5), take_order("Amir", 10), take_order("John", 1)))
  print(a, b, c)
  print("concurrent: " .. tostring(loop:time() - t0 < 0.15))
end)

asyncio.run(main())
