-- http_client.lua — asyncio.http's client: N GETs over C keep-alive connections (one
-- http.Client, max_per_host = C, C tasks each making N/C requests), against a server
-- given by port. Prints requests per second.
-- usage: alua http_client.lua PORT [N [C]]
local http = require "asyncio.http"
local port, n, c = tonumber(arg[1]), tonumber(arg[2]) or 20000, tonumber(arg[3]) or 50
local client = http.Client { max_per_host = c }
local url = "http://127.0.0.1:" .. port .. "/"
local t0 = asyncio.get_running_loop():time()
local tasks = {}
for i = 1, c do
  tasks[i] = asyncio.create_task(function()
    for _ = 1, n // c do
      local res = await(client:get(url))
      await(res:read())
    end
  end)
end
await(asyncio.gather(table.unpack(tasks)))
local took = asyncio.get_running_loop():time() - t0
print(("requests=%d seconds=%.3f rps=%.0f"):format(n, took, n / took))
client:close()
