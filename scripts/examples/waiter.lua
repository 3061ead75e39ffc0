-- waiter.lua — call-form twin of the conformance seed_waiter.lua: one waiter, three
-- customers who take 5, 10 and 1 "minutes" (fifths of a second: the seed's hundredths
-- left too little room, under valgrind on a busy machine the three took over 0.15 s)
-- to decide. Served concurrently the total is 10 minutes, one after another 16.
local asyncio = require "asyncio"
local MINUTE = 0.2

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
  print("concurrent: " .. tostring(loop:time() - t0 < 15 * MINUTE))
end)

asyncio.run(main())
