-- socket/udp.lua — asyncio.socket's UDP objects (LuaSocket's udp{unconnected} and
-- udp{connected}) on alua's datagram sockets (async/udp.c). alua opens a datagram socket
-- with its local and remote addresses at once, so the socket is made when first needed
-- (setsockname, setpeername, sendto, receive) and made again when setpeername changes the
-- peer, keeping its local address.
local core, _, lib = ...

local net = core.net
local socket, wait, message = lib.socket, lib.wait, lib.message
local type, error, pcall, setmetatable, getmetatable = type, error, pcall, setmetatable, getmetatable
local tostring, tonumber = tostring, tonumber
local tointeger, floor = math.tointeger, math.floor
local sub, format = string.sub, string.format

local DATAGRAM_MAX = 8192 -- LuaSocket's default receive size

local udp = {}
local UDP = { __index = udp }

function UDP:__tostring()
  return format("udp{%s}: %p", self.peer and "connected" or "unconnected", self)
end

local function new(family)
  local self = setmetatable({ family = family, tm = lib.new_timeout(), options = {} }, UDP)
  return self
end

local function check(self, fname)
  if getmetatable(self) ~= UDP then
    error(("bad argument #1 to '%s' (udp{any} expected, got %s)"):format(fname, type(self)), 3)
  end
  if self.closed then return false end
  return true
end

-- (Re)opens the socket with the local address `lhost, lport` and the peer; nil, message
-- on failure.
local function open(self, lhost, lport, rhost, rport)
  if self.u then
    if lhost == nil then lhost, lport = net.udp_sockname(self.u) end
    net.udp_close(self.u)
    self.u = nil
  end
  if lhost == nil and rhost == nil then
    lhost, lport = self.family == "inet6" and "::" or "0.0.0.0", 0
  end
  local ok, u = pcall(net.udp_open, lhost, lport, rhost, rport, self.options.reuseport, self.options.broadcast)
  if not ok then return nil, message(u) end
  net.udp_idle(u)
  self.u = u
  self.peer = rhost and { rhost, rport } or nil
  return 1.0
end

-- The socket, made unbound (the wildcard address of the family of `ip`) when needed.
local function handle(self, ip)
  if self.u then return self.u end
  local fam = self.family or (ip and net.parse_ip(ip)) or "inet"
  local any = fam == "inet6" and "::" or "0.0.0.0"
  local ok, err = open(self, any, 0)
  if not ok then return nil, err end
  return self.u
end

-- setsockname(address, port): binds ("*": every interface)
function udp:setsockname(host, port)
  if not check(self, "setsockname") then return nil, "closed" end
  host = lib.check_string("setsockname", host, 1)
  local list, err
  port, err = lib.check_service("setsockname", port, 2)
  if not port then return nil, err end
  list, err = lib.resolve(host, port, self.family, "dgram", true)
  if not list then return nil, err end
  self.family = self.family or list[1].family
  if self.u then return nil, "already bound" end
  local rhost, rport = self.peer and self.peer[1], self.peer and self.peer[2]
  return open(self, list[1].address, list[1].port, rhost, rport)
end

-- setpeername(address, port): connects; setpeername("*") disconnects
function udp:setpeername(host, port)
  if not check(self, "setpeername") then return nil, "closed" end
  host = lib.check_string("setpeername", host, 1)
  if host == "*" then
    if not self.peer then return 1.0 end
    local lhost, lport = net.udp_sockname(self.u)
    return open(self, lhost, lport)
  end
  local list, err
  port, err = lib.check_service("setpeername", port, 2)
  if not port then return nil, err end
  list, err = lib.resolve(host, port, self.family, "dgram")
  if not list then return nil, err end
  self.family = self.family or list[1].family
  local lhost, lport
  if self.u then lhost, lport = net.udp_sockname(self.u) end
  return open(self, lhost, lport, list[1].address, list[1].port)
end

-- sendto(data, address, port) -> bytes sent (the address is resolved if it is a name)
-- (a closed socket: "refused", LuaSocket's word for UDP)
function udp:sendto(data, host, port)
  if not check(self, "sendto") then return nil, "refused" end
  data = lib.check_string("sendto", data, 1)
  host = lib.check_string("sendto", host, 2)
  local list, err
  port, err = lib.check_service("sendto", port, 3)
  if self.peer then error("bad argument #1 to 'sendto' (udp{unconnected} expected, got udp{connected})", 2) end
  if not port then return nil, err end
  list, err = lib.resolve(host, port, self.family, "dgram")
  if not list then return nil, err end
  local u
  u, err = handle(self, list[1].address)
  if not u then return nil, err end
  local ok, e = pcall(net.udp_send, u, data, list[1].address, list[1].port)
  if not ok then return nil, message(e) end
  return #data + 0.0
end

-- send(data) on a connected socket -> bytes sent
function udp:send(data)
  if not check(self, "send") then return nil, "refused" end
  data = lib.check_string("send", data, 1)
  if not self.peer then error("bad argument #1 to 'send' (udp{connected} expected, got udp{unconnected})", 2) end
  local ok, e = pcall(net.udp_send, self.u, data)
  if not ok then return nil, message(e) end
  return #data + 0.0
end

-- The next datagram (cut to size, as recvfrom does), its sender; nil, err.
local function next_datagram(self, size)
  size = size == nil and DATAGRAM_MAX or tointeger(floor(tonumber(size) or -1))
  if size == nil or size < 0 then error("bad argument #1 to 'receive' (number expected)", 3) end
  self.tm:markstart()
  local u, err = handle(self)
  if not u then return nil, err end
  while true do
    if self.stashed then
      local d = self.stashed
      self.stashed = nil
      return sub(d[1], 1, size), d[2], d[3]
    end
    local ok, data, host, port = pcall(net.udp_recv, u)
    if not ok then return nil, message(data) end
    if data then return sub(data, 1, size), host, port end
    local wok, done = pcall(function() return wait(net.udp_wait(u), self.tm:left()) end)
    if not wok then return nil, message(done) end
    if not done then return nil, "timeout" end
  end
end

-- receive([size]) -> a datagram (a closed socket gives "", as LuaSocket's)
function udp:receive(size)
  if not check(self, "receive") then return "" end
  local data, err = next_datagram(self, size)
  if data then return data end
  return nil, err
end

-- receivefrom([size]) -> data, address, port
function udp:receivefrom(size)
  if not check(self, "receivefrom") then return nil, "closed" end
  if self.peer then error("bad argument #1 to 'receivefrom' (udp{unconnected} expected, got udp{connected})", 2) end
  return next_datagram(self, size)
end

local function named(host, port)
  if host == nil then return nil end
  return host, port, net.parse_ip(host) or "inet"
end

function udp:getsockname()
  if not check(self, "getsockname") or not self.u then return nil, "getsockname failed" end
  local host, port, family = named(net.udp_sockname(self.u))
  return host, port and tostring(port), family -- the port as a string, as LuaSocket 3.1's
end

function udp:getpeername()
  if not check(self, "getpeername") or not self.peer then return nil, "getpeername failed" end
  return named(self.peer[1], self.peer[2])
end

-- settimeout, gettimeout, getfamily, setoption, getoption (lib.add_common).
-- Options: broadcast and reuseport apply when the socket is made (before the first
-- setsockname, setpeername or sendto); the others are kept and reported.
lib.add_common(udp, check, {
  broadcast = true, dontroute = true, reuseaddr = true, reuseport = true, ["ipv6-v6only"] = true,
  ["ip-multicast-loop"] = true, ["ip-multicast-ttl"] = true, ["ip-multicast-if"] = true,
  ["ip-add-membership"] = true, ["ip-drop-membership"] = true,
})

function udp:close()
  if getmetatable(self) ~= UDP then error("bad argument #1 to 'close' (udp{any} expected)", 2) end
  if self.u then net.udp_close(self.u) end
  self.u, self.closed, self.stashed = nil, true, nil
  return 1.0
end
UDP.__close = udp.close

-- getfd(): the descriptor (-1 when closed or not yet made), to look at: libuv owns it
function udp:getfd()
  check(self, "getfd")
  return (self.u and net.udp_fileno(self.u) or -1) + 0.0 -- a float, as LuaSocket's
end

function udp.dirty() return false end

-- ---- select's view ------------------------------------------------------------------------

function udp:_readable()
  if self.closed or not self.u then return false end
  if self.stashed then return true end
  local ok, data, host, port = pcall(net.udp_recv, self.u)
  if ok and data then
    self.stashed = { data, host, port }
    return true
  end
  return not ok
end

function udp:_read_waiter()
  if self.u and not self.closed then
    local ok, f = pcall(net.udp_wait, self.u)
    if ok then return f end
  end
end

function udp:_writable() return not self.closed end
function udp._write_waiter() end

function socket.udp() return new(nil) end
function socket.udp4() return new("inet") end
function socket.udp6() return new("inet6") end
