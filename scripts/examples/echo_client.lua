-- echo_client.lua — sends each argument as a line to an echo server and prints what
-- comes back; several clients at once to show they run side by side.
--   alua scripts/examples/echo_client.lua port [message ...]
local asyncio = require "asyncio"

local port = tonumber(arg and arg[1])
if not port then
  io.stderr:write("usage: echo_client.lua port [message ...]\n")
  os.exit(2)
end
local messages = { table.unpack(arg, 2) }
if #messages == 0 then messages = { "hello", "from", "alua" } end

-- one client per message, all connected at once; each returns the echoed line
local client = async(function(i, message)
  local reader, writer = await(asyncio.open_connection("127.0.0.1", port))
  writer:write(message .. "\n")
  await(writer:drain())
  local reply = await(reader:readline())
  writer:close()
  await(writer:wait_closed())
  return ("%d: %s"):format(i, reply:gsub("\n$", ""))
end)

local clients = {}
for i, m in ipairs(messages) do clients[i] = client(i, m) end
for _, line in ipairs { await(asyncio.gather(table.unpack(clients))) } do print(line) end
