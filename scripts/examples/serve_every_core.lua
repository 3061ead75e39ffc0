-- serve_every_core.lua — one HTTP hello server per CPU on the same port: each worker
-- listens with reuse_port = true and the kernel spreads the connections between them.
-- This file is both programs: run as a script it starts the workers (itself, on other
-- threads); inside a worker (asyncio.parent is set) it serves.
--   alua scripts/examples/serve_every_core.lua [port [workers]]
--   then: curl http://127.0.0.1:PORT/  (the body names the worker that answered)
local asyncio = require "asyncio"

local function serve(port, id)
  local handle = async(function(reader, writer)
    while true do
      local request_line = await(reader:readline())
      if request_line == "" then break end
      for line in reader:lines() do -- headers, up to the blank line
        if line == "" then break end
      end
      local body = ("Hello from worker %d\n"):format(id)
      writer:write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s")
        :format(#body, body))
      await(writer:drain())
    end
    writer:close()
  end)
  local server = await(asyncio.start_server(handle, "127.0.0.1", port, { reuse_port = true }))
  local _, bound = server:sockname()
  asyncio.parent:send(bound) -- ready: the creator may now tell the world
  await(asyncio.parent:recv()) -- serve until the creator says stop (or terminates us)
  server:close()
end

if asyncio.parent then
  serve(...)
  return
end

local port = tonumber(arg[1]) or 8080
local n = tonumber(arg[2]) or asyncio.cpu_count()
local workers = {}
for i = 1, n do
  workers[i] = await(asyncio.start_worker(arg[0], port, i))
  port = await(workers[i]:recv()) -- port 0: the first worker's port is everyone's
end
print(("%d workers serving http://127.0.0.1:%d/ (Ctrl-C stops them)"):format(n, port))
for _, w in ipairs(workers) do await(w:wait()) end
