-- http_client.lua — workload L (copas side), for lua5.1 with Debian's lua-copas (1.1.7,
-- which has no copas.http): N socket.http GETs from C copas threads, socket.http given
-- copas-driven sockets through its `create` hook, as copas 2's copas.http does.
-- usage: lua5.1 http_client.lua PORT [N [C]]   prints: requests=N seconds=S req_per_s=R
local copas = require "copas" -- (before socket.http: copas insists)
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local port = assert(tonumber(arg[1]), "usage: http_client.lua PORT [N [C]]")
local n, c = tonumber(arg[2]) or 1000, tonumber(arg[3]) or 50
local url = "http://127.0.0.1:" .. port .. "/"

-- A LuaSocket-like object whose waits yield to copas (copas.wrap lacks connect and
-- receive's prefix, which socket.http uses).
local function create()
  local skt = socket.tcp()
  local s = {}
  function s:connect(host, p)
    local ok, err = copas.connect(skt, host, p)
    if not ok and err == "already connected" then return 1 end -- (copas 1.x misses this)
    return ok, err
  end
  function s:settimeout() return 1 end
  function s:send(data, i, j) return copas.send(skt, data, i, j) end
  function s:receive(pattern, prefix) return copas.receive(skt, pattern, prefix) end
  function s:close() return skt:close() end
  function s:setoption(...) return skt:setoption(...) end
  function s:getfd() return skt:getfd() end
  function s:dirty() return skt:dirty() end
  return s
end

local done, failed, finished = 0, 0, 0
local function client()
  while done + failed < n do
    done = done + 1
    local parts = {}
    local ok, code = http.request { url = url, create = create, sink = ltn12.sink.table(parts) }
    if code ~= 200 or table.concat(parts) ~= "Hello, World!" then
      done, failed = done - 1, failed + 1
      io.stderr:write("request failed: ", tostring(ok), " ", tostring(code), "\n")
    end
  end
  finished = finished + 1
end

local t0 = socket.gettime()
for _ = 1, c do copas.addthread(client) end
while finished < c do copas.step(1) end
local s = socket.gettime() - t0
print(("requests=%d failed=%d seconds=%.3f req_per_s=%.0f"):format(done, failed, s, done / s))
os.exit(failed == 0 and 0 or 1)
