-- https_hello.lua — an HTTPS server: HTTP/1.1 over TLS with keep-alive, answering each
-- request with what the TLS layer negotiated. The certificate and key are PEM files
-- (tests/tls_certs.sh makes a test CA and a certificate for localhost).
--   alua scripts/examples/https_hello.lua CERTFILE KEYFILE [port]
--   curl --cacert CA.pem https://localhost:PORT/
local asyncio = require "asyncio"

local certfile, keyfile = arg[1], arg[2]
if not (certfile and keyfile) then
  io.stderr:write("usage: alua https_hello.lua CERTFILE KEYFILE [port]\n")
  os.exit(2)
end
local port = tonumber(arg[3]) or 0

local handle = async(function(reader, writer)
  local tls = writer:get_extra_info("ssl")
  while true do
    local request_line = await(reader:readline())
    local method, target, version = request_line:match("^(%u+) (%S+) HTTP/(%d%.%d)\r?\n$")
    if not method then break end -- the end of the connection, or not HTTP
    local headers = {}
    for line in reader:lines() do
      if line == "" then break end
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then headers[name:lower()] = value end
    end
    local keep_alive = version == "1.1" and (headers["connection"] or ""):lower() ~= "close"
    local body = ("Hello over %s (%s)! %s %s\n"):format(tls.version, tls.cipher, method, target)
    writer:write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" ..
      "Connection: %s\r\n\r\n%s"):format(#body, keep_alive and "keep-alive" or "close", body))
    await(writer:drain())
    if not keep_alive then break end
  end
  writer:close()
end)

local server = await(asyncio.start_server(handle, "127.0.0.1", port, {
  ssl = {
    certfile = certfile,
    keyfile = keyfile,
    on_handshake_error = function(err) io.stderr:write("handshake failed: ", err.message, "\n") end,
  },
}))
print(("listening on https://localhost:%d/"):format(select(2, server:sockname())))
io.stdout:flush()
await(server:serve_forever())
