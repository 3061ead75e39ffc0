-- socket_http_alone.lua — workload L's part that is the same for every client: Debian's
-- socket.http (unchanged) making N GETs through an in-memory socket that answers at once
-- as bench/c/http_server.c does (no system call, no loop, no waiting). Its CPU per request
-- on lua5.1 (copas's VM) and lua5.4 (alua's) is what socket.http's own Lua costs there;
-- `bare` runs only the in-memory socket's calls, in socket.http's order, to subtract.
-- usage: lua5.4 | lua5.1 socket_http_alone.lua [N [bare]]   prints: requests=N seconds=S
--        alua socket_http_alone.lua N [bare] alua            (through asyncio.socket's helpers)
local n = tonumber(arg[1]) or 20000
if arg[3] == "alua" then require("asyncio.socket").install() end
local socket = require "socket"
local http = require "socket.http"

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
local find, sub, gsub = string.find, string.sub, string.gsub

-- The calls socket.http makes on its socket, with LuaSocket's results.
local Mem = {}
Mem.__index = Mem
function Mem:settimeout() return 1 end
function Mem:connect() return 1 end
function Mem:send(data) return #data end
function Mem:close() return 1 end
function Mem:receive(pattern, prefix)
  prefix = prefix or ""
  local pos = self.pos
  if pattern == nil or pattern == "*l" then
    local nl = find(RESPONSE, "\n", pos, true)
    self.pos = nl + 1
    return prefix .. gsub(sub(RESPONSE, pos, nl - 1), "\r", "")
  end
  self.pos = pos + pattern
  return prefix .. sub(RESPONSE, pos, pos + pattern - 1)
end
local function tcp() return setmetatable({ pos = 1 }, Mem) end

local clock = socket.gettime
local t0 = clock()
if arg[2] == "bare" then
  for _ = 1, n do
    local s = tcp()
    s:settimeout(60)
    s:connect("127.0.0.1", 8080)
    s:send("GET / HTTP/1.1\r\n")
    s:send("user-agent: LuaSocket 3.1.0\r\nhost: 127.0.0.1:8080\r\nconnection: close, TE\r\nte: trailers\r\n\r\n")
    s:receive("*l", s:receive(5))
    for _ = 1, 3 do s:receive() end
    s:receive(13)
    s:close()
  end
else
  socket.tcp = tcp -- socket.http's default create
  local url = "http://127.0.0.1:8080/"
  for _ = 1, n do
    local body, code = http.request(url)
    if code ~= 200 or body ~= "Hello, World!" then error("unexpected answer: " .. tostring(code)) end
  end
end
print(("requests=%d seconds=%.3f"):format(n, clock() - t0))
