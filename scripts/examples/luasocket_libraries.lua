-- luasocket_libraries.lua — LuaSocket libraries, unchanged, many at once: after
-- asyncio.socket.install(), Debian's socket.http makes 20 requests from 20 tasks to a
-- small alua server that takes 0.3 s per answer; together they take about 0.3 s, not 6.
--   alua scripts/examples/luasocket_libraries.lua
local asyncio = require "asyncio"
local socket = require("asyncio.socket").install() -- before requiring the libraries
local http = require "socket.http"                  -- lua-socket's, as it is
local ltn12 = require "ltn12"

-- A slow HTTP server: reads a request, waits 0.3 s, answers with the path in the body.
local server = await(asyncio.start_server(function(reader, writer)
  local path = await(reader:readline()):match("^%u+ (%S+)")
  repeat local line = await(reader:readline()) until line == "\r\n" or line == ""
  await(asyncio.sleep(0.3))
  local body = "you asked for " .. path
  writer:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#body, body))
  await(writer:drain())
  writer:close()
end, "127.0.0.1", 0))
local base = "http://127.0.0.1:" .. select(2, server:sockname())

-- One request in plain LuaSocket style (the ltn12 sink form), outside any task: it runs
-- the loop until it is done.
local parts = {}
local ok, code = http.request { url = base .. "/first", sink = ltn12.sink.table(parts) }
print(ok, code, table.concat(parts))

-- Twenty at once, one task each.
local started = socket.gettime()
local tasks = {}
for i = 1, 20 do
  tasks[i] = asyncio.create_task(function()
    local body, status = http.request(base .. "/page/" .. i)
    return status == 200 and body or ("failed: " .. tostring(status))
  end)
end
local bodies = { await(asyncio.gather(table.unpack(tasks))) }
local elapsed = socket.gettime() - started
print(#bodies .. " answers, the last: " .. bodies[20])
print(elapsed < 2 and "together, not one after another" or ("took " .. elapsed .. " s"))
server:close()
