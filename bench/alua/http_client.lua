-- http_client.lua — workload HC: asyncio.http's client makes N GETs over C keep-alive
-- connections (one http.Client, max_per_host = C, C tasks each making N/C requests) to a
-- server given by port. Prints requests per second and the CPU time per request, both
-- over the timed region.
-- usage: alua http_client.lua PORT [N [C]]
local http = require "asyncio.http"
local port, n, c = tonumber(arg[1]), tonumber(arg[2]) or 20000, tonumber(arg[3]) or 50
local client = http.Client { max_per_host = c }
local url = "http://127.0.0.1:" .. port .. "/"
local loop = asyncio.get_running_loop()
local t0, cpu0 = loop:time(), os.clock()
local tasks = {}
for i = 1, c do
  tasks[i] = asyncio.create_task(function()
    for _ = 1, n // c do
      local res = await(client:get(url))
      await(res:read())
    end
  end)
end
await(asyncio.gather(tasks))
local took, cpu = loop:time() - t0, os.clock() - cpu0
print(("requests=%d seconds=%.3f req_per_s=%.0f cpu_us_per_req=%.2f"):format(n, took, n / took, cpu * 1e6 / n))
client:close()
