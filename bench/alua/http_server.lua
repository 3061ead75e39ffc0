-- http_server.lua — workload E: a keep-alive HTTP/1.1 "hello" server on the public streams
-- API. A request is its head, up to the blank line (wrk sends no body).
-- usage: alua http_server.lua PORT [HOST]
local asyncio = require "asyncio"
-- (as a worker of on_every_core.lua: the same arguments, and the port shared)
local port = tonumber((...)) or 8080
local host = select(2, ...) or "127.0.0.1"

if not asyncio.start_server then
  io.stderr:write("pending streams: asyncio.start_server is not available\n")
  os.exit(77)
end

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"

local handle = async(function(reader, writer)
  local ok, err = pcall(function()
    while true do
      local head = await(reader:readuntil("\r\n\r\n"))
      if not head:find("^%u+ ") then break end
      writer:write(RESPONSE)
      await(writer:drain())
    end
  end)
  if not ok and not asyncio.IncompleteReadError:is(err) and not asyncio.ConnectionError:is(err) then
    error(err, 0)
  end
  writer:close()
end)

local main = async(function()
  local server = await(asyncio.start_server(handle, host, port, { nodelay = true, backlog = 1024,
    reuse_port = asyncio.parent ~= nil }))
  await(server:serve_forever())
end)

asyncio.run(main())
