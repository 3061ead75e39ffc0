-- two_queries.lua — call-form twin of the conformance seed_two_queries.lua: two 50 ms
-- queries fired together take about 50 ms. Top-level await, no asyncio.run.
local asyncio = require "asyncio"

local query = async(function(sql)
  await(asyncio.sleep(0.05))
  return "rows for " .. sql, asyncio.get_running_loop():time()
end)

local users, orders = await(asyncio.gather(query("users"), query("orders")))
print(users)
print(orders)

local results = {}
for i = 1, 3 do
  results[i] = await(query("page " .. i)) -- sequential awaits still work
end
print(#results, results[3])
