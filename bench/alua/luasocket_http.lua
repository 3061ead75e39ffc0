-- luasocket_http.lua — workload L (alua side): N socket.http GETs (Debian's lua-socket,
-- unchanged, after asyncio.socket.install()) from C tasks against one server; each
-- request is its own connection, as socket.http makes them.
-- usage: alua luasocket_http.lua PORT [N [C]]   prints: requests=N seconds=S req_per_s=R
local asyncio = require "asyncio"
require("asyncio.socket").install()
local http = require "socket.http"

local port = assert(tonumber(arg[1]), "usage: luasocket_http.lua PORT [N [C]]")
local n, c = tonumber(arg[2]) or 1000, tonumber(arg[3]) or 50
local url = "http://127.0.0.1:" .. port .. "/"

local done, failed = 0, 0
local function client()
  while done + failed < n do
    done = done + 1
    local body, code = http.request(url)
    if code ~= 200 or body ~= "Hello, World!" then
      done, failed = done - 1, failed + 1
      io.stderr:write("request failed: ", tostring(code), "\n")
    end
  end
end

local loop = asyncio.get_running_loop()
local t0 = loop:time()
local tasks = {}
for i = 1, c do tasks[i] = asyncio.create_task(client) end
await(asyncio.gather(table.unpack(tasks)))
local s = loop:time() - t0
print(("requests=%d failed=%d seconds=%.3f req_per_s=%.0f"):format(done, failed, s, done / s))
os.exit(failed == 0 and 0 or 1)
