-- http_hello.lua — an HTTP/1.1 server answering "Hello, world!" with Content-Length and
-- keep-alive (several requests per connection, pipelined ones too). The body says which
-- request on which connection it answers, so a client can see its connection reused.
--   alua scripts/examples/http_hello.lua [port]      (then: curl http://127.0.0.1:PORT/)
local asyncio = require "asyncio"

local port = tonumber(arg and arg[1]) or 0
local connections = 0

local function respond(writer, status, body, keep_alive)
  writer:write(("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" ..
    "Connection: %s\r\n\r\n%s"):format(status, #body, keep_alive and "keep-alive" or "close", body))
end

local handle = async(function(reader, writer)
  connections = connections + 1
  local conn, requests = connections, 0
  while true do
    local request_line = await(reader:readline())
    if request_line == "" then break end -- the client closed the connection
    local method, target, version = request_line:match("^(%u+) (%S+) HTTP/(%d%.%d)\r?\n$")
    if not method then
      respond(writer, "400 Bad Request", "bad request\n", false)
      break
    end
    local headers = {}
    for line in reader:lines() do
      if line == "" then break end
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then headers[name:lower()] = value end
    end
    local body = ""
    local length = tonumber(headers["content-length"] or 0)
    if length > 0 then body = await(reader:readexactly(length)) end
    local connection = (headers["connection"] or ""):lower()
    local keep_alive = connection ~= "close" and (version == "1.1" or connection == "keep-alive")
    requests = requests + 1
    local text
    if method == "POST" then
      text = ("received %d bytes (request %d on connection %d)\n"):format(#body, requests, conn)
    else
      text = ("Hello, world! %s (request %d on connection %d)\n"):format(target, requests, conn)
    end
    respond(writer, "200 OK", text, keep_alive)
    await(writer:drain())
    if not keep_alive then break end
  end
  writer:close()
end)

local server = await(asyncio.start_server(handle, "127.0.0.1", port))
local host, bound = server:sockname()
print(("listening on http://%s:%d/"):format(host, bound))
io.stdout:flush()
await(server:serve_forever())
