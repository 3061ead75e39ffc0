-- echo_server.lua — a TCP echo server: whatever a client sends comes back, one task per
-- connection, drain() keeping a client that does not read from filling our memory.
--   alua scripts/examples/echo_server.lua [port]     (no port or 0: a free one, printed)
local asyncio = require "asyncio"

local port = tonumber(arg and arg[1]) or 0

local handle = async(function(reader, writer)
  while true do
    local data = await(reader:read(65536))
    if data == "" then break end -- the client sent its end
    writer:write(data)
    await(writer:drain())
  end
  writer:close()
end)

local server = await(asyncio.start_server(handle, "127.0.0.1", port))
local host, bound = server:sockname()
print(("echo server on %s port %d"):format(host, bound))
io.stdout:flush()
await(server:serve_forever()) -- until Ctrl-C
