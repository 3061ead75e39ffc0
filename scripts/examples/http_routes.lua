-- http_routes.lua — an HTTP server with a few routes and a streamed response, on
-- asyncio.http.
--   alua scripts/examples/http_routes.lua 8080    serves on port 8080 until Ctrl-C
--   alua scripts/examples/http_routes.lua         serves on a free port, visits each
--                                                 route with asyncio.http's client, exits
local asyncio = require "asyncio"
local http = require "asyncio.http"

local routes = {}

routes["GET /"] = function()
  return 200, { ["content-type"] = "text/plain" }, "try /hello/NAME, /time, /count/N, POST /echo\n"
end

-- a table body is sent as JSON
routes["GET /time"] = function()
  return 200, nil, { unix = os.time(), utc = os.date("!%Y-%m-%dT%H:%M:%SZ") }
end

routes["POST /echo"] = async function(req)
  local body = await req:read()
  return 200, { ["content-type"] = req.headers["content-type"] or "application/octet-stream" }, body
end

-- routes with a parameter: pattern -> handler(req, capture)
local patterns = {
  { "^GET /hello/([%w_-]+)$", function(_, name)
    return 200, { ["content-type"] = "text/plain" }, "hello, " .. name .. "\n"
  end },
  -- a streamed response: one line every 10 ms, sent chunked as it is produced
  { "^GET /count/(%d+)$", function(_, n)
    local i = 0
    return 200, { ["content-type"] = "text/plain" }, function()
      i = i + 1
      if i > tonumber(n) then return nil end
      await asyncio.sleep(0.01)
      return i .. "\n"
    end
  end },
}

local function handler(req)
  local route = routes[req.method .. " " .. req.path]
  if route then return route(req) end
  for _, p in ipairs(patterns) do
    local capture = (req.method .. " " .. req.path):match(p[1])
    if capture then return p[2](req, capture) end
  end
  return 404, { ["content-type"] = "text/plain" }, "no route for " .. req.method .. " " .. req.path .. "\n"
end

local port = tonumber(arg[1])
local server = await http.serve(handler, "127.0.0.1", port or 0)
local _, bound = server:sockname()
if port then
  print("serving on http://127.0.0.1:" .. bound .. "/")
  await server:serve_forever()
  return
end

-- the demo: each route once
local base = "http://127.0.0.1:" .. bound
local function show(res)
  local body = await res:read()
  print(res.status, res.headers["content-type"] or "-", res.headers["transfer-encoding"] or "-")
  io.write(body)
end
show(await http.get(base .. "/hello/alua"))
local time = await http.get(base .. "/time")
print(time.status, time.headers["content-type"], type((await time:json()).unix))
show(await http.post(base .. "/echo", "echoed back\n", { headers = { ["content-type"] = "text/plain" } }))
local res = await http.get(base .. "/count/3")
for piece in res:chunks() do io.write("piece: ", piece) end
show(await http.get(base .. "/nowhere"))
server:close()
await server:wait_closed()
