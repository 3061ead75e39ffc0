-- chat_server.lua — every line a client sends goes to every other connected client.
-- A client that stops reading is dropped rather than let its backlog grow without end.
--   alua scripts/examples/chat_server.lua [port]     (then: nc 127.0.0.1 PORT, twice)
local asyncio = require "asyncio"

local port = tonumber(arg and arg[1]) or 0
local MAX_BACKLOG = 1024 * 1024 -- bytes queued for one slow client before we drop it

local clients = {} -- writer -> name

local function broadcast(line, from)
  for writer in pairs(clients) do
    if writer ~= from then
      if writer:get_write_buffer_size() > MAX_BACKLOG then
        clients[writer] = nil
        writer:close()
      else
        pcall(writer.write, writer, line) -- a client that just left: never mind
      end
    end
  end
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local handle = async(function(reader, writer)
  local host, p = writer:get_extra_info("peername")
  local name = ("%s:%d"):format(host, p)
  writer:write(("welcome %s, %d other(s) here\n"):format(name, count(clients)))
  clients[writer] = name
  broadcast("* " .. name .. " joined\n", writer)
  local ok, err = pcall(function()
    for line in reader:lines() do broadcast(name .. ": " .. line .. "\n", writer) end
  end)
  clients[writer] = nil
  broadcast("* " .. name .. " left\n", writer)
  writer:close()
  if not ok and not asyncio.OSError:is(err) then error(err, 0) end
end)

local server = await(asyncio.start_server(handle, "127.0.0.1", port))
print(("chat server on %s port %d"):format(server:sockname()))
io.stdout:flush()
await(server:serve_forever())
