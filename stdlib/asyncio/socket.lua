-- socket.lua — asyncio.socket: LuaSocket 3's API on alua's streams, UDP sockets and
-- resolver, so that libraries written for LuaSocket run many at once in tasks. A call
-- that would block suspends only the calling task; outside a task it runs the loop until
-- it is done (as a top-level await). Results follow LuaSocket exactly: nil plus "timeout",
-- "closed" or a message (partial data as the third value), never a raised error for I/O.
-- The parts: socket/tcp.lua, socket/udp.lua, socket/ssl.lua (the lua-sec layer).
local core, M, imports = ... -- imports: lookup, the resolver of streams.lua

local net = core.net
local await, Future, CancelledError, OSError = M.await, M.Future, M.CancelledError, M.OSError
local type, error, pcall, select, setmetatable, getmetatable = type, error, pcall, select, setmetatable, getmetatable
local tostring, tonumber, ipairs = tostring, tonumber, ipairs
local tointeger, min, max = math.tointeger, math.min, math.max
local sub = string.sub

local socket = { _VERSION = "LuaSocket 3.1.0 (alua)" }

-- ---- the shared helpers of the parts (lib) ---------------------------------------------

local lib = { socket = socket }
local loop = M.get_running_loop()
local function now() return loop:time() end
lib.now = now

-- Waits for fut at most `delay` seconds (nil: without limit): true once fut is done,
-- false on timeout (fut is then cancelled). A delay of 0 still lets the loop poll once,
-- so that a LuaSocket poll loop with settimeout(0) sees I/O that has arrived.
-- Cancelling the calling task raises CancelledError as anywhere else.
-- (The timer cancels fut with a message of its own, which tells its cancellation from the
-- task's: no closure per wait.)
-- The sockets do not keep the program running (net.socket_idle, at their creation): a
-- call that waits does, as the blocking call it stands for would, through the timer of
-- its timeout or, without one, net.socket_wait's count; so a script that leaves a socket
-- open ends, as with LuaSocket.
local TIMED_OUT = "asyncio.socket: the wait timed out"
local function expire(fut) fut:cancel(TIMED_OUT) end
local socket_wait = net.socket_wait

function lib.wait(fut, delay)
  if fut:done() then return true end
  local timer, ok, err
  if delay == nil then
    socket_wait(1)
    ok, err = pcall(await, fut)
    socket_wait(-1)
  else
    timer = loop:call_later(delay > 0 and delay or 0, expire, fut)
    ok, err = pcall(await, fut)
    timer:cancel()
  end
  if ok then return true end
  if CancelledError:is(err) and err.message == TIMED_OUT then return false end
  error(err, 0)
end

-- Timeouts as LuaSocket's settimeout: `block` bounds each wait, `total` the whole call
-- (both in seconds, negative: none). A call marks its start; left() is the next wait's bound.
local Timeout = {}
Timeout.__index = Timeout

function lib.new_timeout() return setmetatable({ block = -1, total = -1, start = false }, Timeout) end

function Timeout:set(t, mode)
  t = t == nil and -1 or t
  if type(t) ~= "number" then
    error("bad argument #1 to 'settimeout' (number expected, got " .. type(t) .. ")", 3)
  end
  mode = mode or "b"
  local m = sub(mode, 1, 1)
  if m == "b" then
    self.block = t
  elseif m == "t" or m == "r" then
    self.total = t
  else
    error("bad argument #2 to 'settimeout' (invalid timeout mode)", 3)
  end
end

-- The clock is read when the call first waits, not when it starts: a call that never
-- waits (most receives of buffered data) reads no clock, and one that waits starts
-- counting within the microseconds of Lua that ran before its first wait.
function Timeout:markstart() self.start = false end

-- As LuaSocket's timeout_getretry, which bounds every wait of a call: the block timeout
-- too counts from the start of the call (so it bounds the call, however the data trickles).
function Timeout:left()
  local block, total = self.block, self.total
  if block < 0 and total < 0 then return nil end
  local start, elapsed = self.start, 0
  if start then
    elapsed = now() - start
  else
    self.start = now()
  end
  if block < 0 then return max(total - elapsed, 0) end
  if total < 0 then return max(block - elapsed, 0) end
  return min(block, max(total - elapsed, 0))
end

function Timeout:get() return self.block + 0.0, self.total + 0.0 end

-- LuaSocket's words for the errors its callers test for (pierror.h); other system errors
-- get the C library's strerror text, as LuaSocket gives them.
local WORDS = {
  EPIPE = "closed", ECONNRESET = "closed", ECONNABORTED = "closed", ENOTCONN = "closed",
  EOF = "closed", EBADF = "closed", ETIMEDOUT = "timeout", ECONNREFUSED = "connection refused",
  EADDRINUSE = "address already in use", EISCONN = "already connected", EACCES = "permission denied",
  EAI_NONAME = "host or service not provided, or not known", EAI_AGAIN = "temporary failure in name resolution",
  EAI_FAIL = "non-recoverable failure in name resolution", EAI_FAMILY = "ai_family not supported",
  EAI_SERVICE = "service not supported for socket type", EAI_SOCKTYPE = "ai_socktype not supported",
}

-- The LuaSocket message of a caught error: OSError and SSLError by their errno or text;
-- anything else (a cancellation, a bug) is raised again.
function lib.message(err)
  if M.SSLError:is(err) then -- OpenSSL's reason, as lua-sec gives it
    return err.reason or (tostring(err.message):gsub("^[%w_.]+: ", ""))
  end
  if OSError:is(err) then
    local word = err.errno and (WORDS[err.errno] or net.strerror(err.errno))
    if word then return word end
    local msg = tostring(err.message)
    return msg:match("%((.-)%)$") or msg
  end
  error(err, 0)
end

-- IP addresses of host (nil, message on failure): an address as given, a name through
-- the resolver (family "inet"/"inet6" or nil for both); "*" is the wildcard address.
function lib.resolve(host, port, family, socktype, passive)
  if host == "*" then host = family == "inet6" and "::" or "0.0.0.0" end
  if type(host) ~= "string" then return nil, "host or service not provided, or not known" end
  local fam = net.parse_ip(host)
  if fam and type(port) ~= "string" then -- (a service name, "http", is looked up)
    if family and fam ~= family then return nil, "Address family for hostname not supported" end -- getaddrinfo's EAI_ADDRFAMILY
    return { { family = fam, address = host, port = port } }
  end
  local ok, list = pcall(imports.lookup, host, port, family, socktype, passive)
  if not ok then return nil, lib.message(list) end
  if #list == 0 then return nil, "host or service not provided, or not known" end
  return list
end

-- A port as LuaSocket's connect, bind, setsockname, setpeername and sendto take it, a
-- string for getaddrinfo: an integer, or a service name ("http") lib.resolve looks up;
-- nil and the error (LuaSocket's result for a port getaddrinfo refuses) outside
-- 0..65535. What is neither a number nor a string raises, as luaL_checkstring does.
function lib.check_service(fname, port, n)
  local p = tointeger(tonumber(port))
  if p == nil and type(port) == "string" then return port end
  if p == nil then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname,
      port == nil and "no value" or type(port)), 3)
  end
  if p < 0 or p > 65535 then return nil, "service not supported for socket type" end
  return p
end

-- Arguments checked as LuaSocket's C functions do (luaL_checkinteger and friends).
function lib.check_port(fname, port, n)
  local p = tointeger(tonumber(port))
  if p == nil then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname,
      port == nil and "no value" or type(port)), 3)
  end
  return p
end

function lib.check_string(fname, s, n)
  local t = type(s)
  if t == "number" then return tostring(s) end
  if t ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname,
      s == nil and "no value" or t), 3)
  end
  return s
end

-- The methods TCP and UDP objects share; `check(self, fname)` checks the object,
-- `options` names the options setoption takes (kept in self.options), and
-- `apply(self, name, value)`, if given, sets one on the socket made (nil, or a message).
function lib.add_common(methods, check, options, apply)
  local function known(fname, name)
    if not options[name] then
      error(("bad argument #1 to '%s' (unsupported option `%s')"):format(fname, tostring(name)), 3)
    end
  end
  function methods:settimeout(t, mode)
    check(self, "settimeout")
    self.tm:set(tonumber(t) or t, mode)
    return 1.0
  end
  function methods:gettimeout()
    check(self, "gettimeout")
    return self.tm:get()
  end
  function methods:getfamily()
    check(self, "getfamily")
    return self.family or "inet"
  end
  function methods:setoption(name, value)
    check(self, "setoption")
    known("setoption", name)
    local err = apply and apply(self, name, value)
    if err then return nil, err end
    self.options[name] = value
    return 1.0
  end
  function methods:getoption(name)
    check(self, "getoption")
    known("getoption", name)
    local v = self.options[name]
    if v == nil then v = false end
    return v
  end
end

-- ---- the parts ------------------------------------------------------------------------

core.load_part("asyncio.socket.tcp", core, M, lib)
core.load_part("asyncio.socket.udp", core, M, lib)

-- ---- time -------------------------------------------------------------------------------

-- gettime(): seconds since the epoch, with a fraction (the wall clock)
socket.gettime = net.wallclock

-- sleep(s): suspends the calling task (outside a task: runs the loop for s seconds).
function socket.sleep(s)
  s = tonumber(s)
  if s == nil then error("bad argument #1 to 'sleep' (number expected)", 2) end
  if s > 0 then await(M.sleep(s)) end
end

-- ---- select -----------------------------------------------------------------------------

-- select(recvt, sendt [, timeout]) -> readable, writable, err: each list also maps a
-- ready socket to its index; err "timeout" when nothing is ready. Sockets of this module
-- (and their ssl wrappers) take part; other values are skipped, as LuaSocket skips
-- closed ones.
local function ready(list, method, out)
  if type(list) ~= "table" then return end
  for _, s in ipairs(list) do
    local f = type(s) == "table" and s[method]
    if f and not out[s] and f(s) then
      out[#out + 1] = s
      out[s] = #out + 0.0
    end
  end
end

local function waiters(list, method, futs)
  if type(list) ~= "table" then return end
  for _, s in ipairs(list) do
    local f = type(s) == "table" and s[method]
    local fut = f and f(s)
    if fut then futs[#futs + 1] = fut end
  end
end

function socket.select(recvt, sendt, timeout)
  if recvt ~= nil and type(recvt) ~= "table" then
    error("bad argument #1 to 'select' (table expected, got " .. type(recvt) .. ")", 2)
  end
  if sendt ~= nil and type(sendt) ~= "table" then
    error("bad argument #2 to 'select' (table expected, got " .. type(sendt) .. ")", 2)
  end
  timeout = tonumber(timeout)
  if timeout and timeout < 0 then timeout = nil end
  local start = now()
  while true do
    local r, w = {}, {}
    ready(recvt, "_readable", r)
    ready(sendt, "_writable", w)
    if #r > 0 or #w > 0 then return r, w, nil end
    local left = timeout and timeout - (now() - start)
    if left and left <= 0 and timeout > 0 then return r, w, "timeout" end
    local futs = {}
    waiters(recvt, "_read_waiter", futs)
    waiters(sendt, "_write_waiter", futs)
    local any = Future()
    local function wake() if not any:done() then any:set_result() end end
    for _, f in ipairs(futs) do
      if f:done() then wake() else f:add_done_callback(wake) end
    end
    local woken = lib.wait(any, left and (left > 0 and left or 0))
    for _, f in ipairs(futs) do
      if not f:done() then f:cancel() end
    end
    if not woken then
      r, w = {}, {}
      ready(recvt, "_readable", r)
      ready(sendt, "_writable", w)
      return r, w, (#r == 0 and #w == 0) and "timeout" or nil
    end
  end
end

-- ---- names ------------------------------------------------------------------------------

local dns = {}
socket.dns = dns

local function resolved(name, list)
  local ips, seen = {}, {}
  for _, ai in ipairs(list) do
    if not seen[ai.address] then
      seen[ai.address] = true
      ips[#ips + 1] = ai.address
    end
  end
  return { name = name, alias = {}, ip = ips }
end

-- The name of an IP address by a reverse lookup on libuv's thread pool; nil when it has
-- none (or the lookup failed).
local function name_of(ip)
  local ok, name = pcall(function()
    local req, fut = net.getnameinfo(ip)
    local done, err = pcall(await, fut)
    if not done then
      net.getnameinfo_cancel(req)
      error(err, 0)
    end
    return net.getnameinfo_result(req)
  end)
  if ok then return name end
  if not OSError:is(name) then error(name, 0) end -- a cancellation goes on
  return nil
end

-- dns.toip(name) -> first IPv4 address, {name=, alias=, ip=} (as gethostbyname)
function dns.toip(name)
  name = lib.check_string("toip", name, 1)
  local list, err = lib.resolve(name, nil, "inet", "stream")
  if not list then return nil, err == "host or service not provided, or not known" and "host not found" or err end
  local r = resolved(name, list)
  if net.parse_ip(name) then r.name = name_of(name) or name end
  return r.ip[1], r
end

-- dns.getaddrinfo(name) -> list of {family = "inet"|"inet6", addr = ip}
function dns.getaddrinfo(name)
  name = lib.check_string("getaddrinfo", name, 1)
  local list, err = lib.resolve(name, nil, nil, "stream")
  if not list then return nil, err end
  local out = {}
  for i, ai in ipairs(list) do out[i] = { family = ai.family, addr = ai.address } end
  return out
end

-- dns.gethostname(): this machine's name
dns.gethostname = net.gethostname

-- dns.tohostname(address) -> name, {name=, alias=, ip=}
function dns.tohostname(addr)
  addr = lib.check_string("tohostname", addr, 1)
  local ip = addr
  if not net.parse_ip(addr) then
    local a, err = dns.toip(addr)
    if not a then return nil, err end
    ip = a
  end
  local name = name_of(ip)
  if not name then return nil, "host not found" end
  return name, { name = name, alias = {}, ip = { ip } }
end

-- dns.getnameinfo(host) -> the names of host's addresses (a name: each address resolved
-- back), or nil, message
function dns.getnameinfo(host)
  host = lib.check_string("getnameinfo", host, 1)
  local list, err = lib.resolve(host, nil, nil, "stream")
  if not list then return nil, err end
  local out, seen = {}, {}
  for _, ai in ipairs(list) do
    local name = name_of(ai.address)
    if name and not seen[name] then
      seen[name] = true
      out[#out + 1] = name
    end
  end
  if #out == 0 then return nil, "host or service not provided, or not known" end
  return out
end

-- ---- error helpers: protect, newtry, try, skip --------------------------------------------

-- newtry's errors are boxed so that protect returns them and lets other errors through;
-- all three are C (async/net/luasocket.c), as LuaSocket's own: socket.http calls them a
-- dozen times a request.
socket.newtry, socket.protect, socket.skip = net.newtry, net.protect, net.skip
socket.try = socket.newtry()

-- choose(table): a function dispatching on its first argument (socket.lua's helper)
function socket.choose(t)
  return function(name, opt1, opt2)
    if type(name) ~= "string" then name, opt1, opt2 = "default", name, opt1 end
    local f = t[name or "nil"]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(opt1, opt2)
  end
end

-- ---- ltn12 sources and sinks on sockets (socket.lua's) ---------------------------------

socket.BLOCKSIZE = 2048
socket.sourcet, socket.sinkt = {}, {}

socket.sinkt["close-when-done"] = function(sock)
  return setmetatable({ getfd = function() return sock:getfd() end, dirty = function() return sock:dirty() end }, {
    __call = function(_, chunk)
      if not chunk then
        sock:close()
        return 1
      end
      return sock:send(chunk)
    end,
  })
end

socket.sinkt["keep-open"] = function(sock)
  return setmetatable({ getfd = function() return sock:getfd() end, dirty = function() return sock:dirty() end }, {
    __call = function(_, chunk)
      if chunk then return sock:send(chunk) end
      return 1
    end,
  })
end

socket.sinkt["default"] = socket.sinkt["keep-open"]
socket.sink = socket.choose(socket.sinkt)

socket.sourcet["by-length"] = function(sock, length)
  return setmetatable({ getfd = function() return sock:getfd() end, dirty = function() return sock:dirty() end }, {
    __call = function()
      if length <= 0 then return nil end
      local size = math.min(socket.BLOCKSIZE, length)
      local chunk, err = sock:receive(size)
      if err then return nil, err end
      length = length - #chunk
      return chunk
    end,
  })
end

socket.sourcet["until-closed"] = function(sock)
  local done
  return setmetatable({ getfd = function() return sock:getfd() end, dirty = function() return sock:dirty() end }, {
    __call = function()
      if done then return nil end
      local chunk, err, partial = sock:receive(socket.BLOCKSIZE)
      if not err then return chunk end
      if err == "closed" then
        sock:close()
        done = 1
        return partial
      end
      return nil, err
    end,
  })
end

socket.sourcet["default"] = socket.sourcet["until-closed"]
socket.source = socket.choose(socket.sourcet)

-- ---- install --------------------------------------------------------------------------

-- install(): require "socket" and "socket.core" return this module, require "ssl" the
-- lua-sec layer (socket/ssl.lua), so that unchanged LuaSocket libraries (socket.http,
-- socket.smtp, socket.ftp, ltn12, lua-sec's ssl.https, redis-lua) use it. Returns the module.
function socket.install()
  local loaded = package.loaded
  loaded["socket"], loaded["socket.core"] = socket, socket
  if not loaded["asyncio.socket.ssl"] then
    loaded["asyncio.socket.ssl"] = core.load_part("asyncio.socket.ssl", core, M, lib)
  end
  loaded["ssl"] = loaded["asyncio.socket.ssl"]
  loaded["ssl.core"] = loaded["ssl"]
  loaded["ssl.x509"] = loaded["ssl.x509"] or { load = loaded["ssl"].loadcertificate }
  return socket
end

return socket
