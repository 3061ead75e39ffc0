-- echo_server.lua — workload D: a TCP echo server on the public streams API.
-- usage: alua echo_server.lua PORT [HOST]
local asyncio = require "asyncio"
-- (as a worker of on_every_core.lua: the same arguments, and the port shared)
local port = tonumber((...)) or 8000
local host = select(2, ...) or "127.0.0.1"

if not asyncio.start_server then
  io.stderr:write("pending streams: asyncio.start_server is not available\n")
  os.exit(77)
end

local handle = async(function(reader, writer)
  local ok, err = pcall(function()
    while true do
      local data = await(reader:read(65536))
      if data == nil or data == "" then break end
      writer:write(data)
      await(writer:drain())
    end
  end)
  if not ok and not asyncio.ConnectionError:is(err) then error(err, 0) end
  writer:close()
end)

local main = async(function()
  local server = await(asyncio.start_server(handle, host, port, { nodelay = true, backlog = 1024,
    reuse_port = asyncio.parent ~= nil }))
  await(server:serve_forever())
end)

asyncio.run(main())
