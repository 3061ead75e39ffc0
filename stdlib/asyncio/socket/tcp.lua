-- socket/tcp.lua — asyncio.socket's TCP objects (LuaSocket's tcp{master}, tcp{client},
-- tcp{server}) on alua's streams and listeners (async/stream.c, async/tcp.c).
-- A line or a count that the stream's C buffer holds whole is taken from it in C
-- (take_fast). Otherwise received data is kept here, in Lua, between calls: LuaSocket's
-- patterns ("*l" drops every "\r", a count, "*a") and its partial results need the bytes
-- a call could not finish with, and the C buffer hands out what it holds in one piece.
local core, _, lib = ...

local net = core.net
local socket, wait, message = lib.socket, lib.wait, lib.message
local type, error, pcall, setmetatable, getmetatable = type, error, pcall, setmetatable, getmetatable
local tostring, tonumber, ipairs = tostring, tonumber, ipairs
local tointeger, floor = math.tointeger, math.floor
local find, sub, gsub, format = string.find, string.sub, string.gsub, string.format
local concat = table.concat
local getinfo, getlocal = debug.getinfo, debug.getlocal

local read_some, wait_read, net_write = net.read_some, net.wait_read, net.write
local drain_needed, wait_drain = net.drain_needed, net.wait_drain
local parse_ip, socket_take = net.parse_ip, net.socket_take

local tcp = {} -- the methods
local TCP = { __index = tcp }

function TCP:__tostring() return format("tcp{%s}: %p", self.state, self) end

local BACKLOG = 32 -- socket.bind's, as LuaSocket's listen()

local function new(family, state)
  local self = setmetatable({
    family = family, state = state or "master", tm = lib.new_timeout(),
    buf = "", pos = 1, received = 0, sent = 0, birthday = lib.now(),
    options = { ["tcp-nodelay"] = true },
  }, TCP)
  return self
end

local function check(self, fname, state)
  if getmetatable(self) ~= TCP then
    error(("bad argument #1 to '%s' (tcp{%s} expected, got %s)"):format(fname, state or "any", type(self)), 3)
  end
  if state and self.state ~= state then
    error(("bad argument #1 to '%s' (tcp{%s} expected, got tcp{%s})"):format(fname, state, self.state), 3)
  end
end

-- ---- receiving ----------------------------------------------------------------------------

-- Waits (within the call's timeout) for the stream to have data, or for the drain of its
-- write buffer: true, or false on timeout; raises what the wait raises (module-level
-- functions, so that a wait makes no closure).
local function wait_readable(h, tm) return wait(wait_read(h), tm:left()) end
local function wait_drained(h, tm) return wait(wait_drain(h), tm:left()) end

-- An error of a read or a wait: LuaSocket's word for a socket error, or false and the
-- error to raise again (a cancellation; an await that cannot suspend, in a finalizer).
local function failure(err)
  local ok, word = pcall(message, err)
  if ok then return word end
  return false, err
end

-- Appends the next data of the stream to the buffer: nil, or "closed", "timeout" or a
-- message when there is none; false and an error to raise (once the caller has put back
-- what it took from the buffer: a receive cut short loses no data). Closed meanwhile (by
-- a finalizer that ran inside the read, or a task while it waited), "closed": what came
-- must not refill the buffer close() emptied.
local function fill(self)
  local h = self.h
  if h == nil or self.rclosed then return "closed" end
  while true do
    local ok, status, data = pcall(read_some, h)
    if self.h ~= h then return "closed" end
    if not ok then return failure(status) end
    if status == "eof" then return "closed" end
    if status == "ok" then
      self.received = self.received + #data
      if self.pos > #self.buf then
        self.buf = data
      else
        self.buf = sub(self.buf, self.pos) .. data
      end
      self.pos = 1
      return nil
    end
    local wok, done = pcall(wait_readable, h, self.tm)
    self.receiving = true -- (another task may have received, and cleared it, meanwhile)
    if not wok then return failure(done) end
    if not done then return "timeout" end
  end
end

-- Takes what is buffered (for a partial result).
local function take_all(self)
  local rest = sub(self.buf, self.pos)
  self.buf, self.pos = "", 1
  return rest
end

-- Raises err once the data taken, parts[2..k], is back in front of the buffer (not into
-- the buffer of an object closed meanwhile).
local function put_back(self, parts, k, err)
  if self.h then
    local back = concat(parts, "", 2, k) .. sub(self.buf, self.pos)
    if self.h then self.buf, self.pos = back, 1 end
  end
  error(err, 0)
end

local function strip_cr(s)
  local cr = find(s, "\r", 1, true)
  if not cr then return s end
  if cr == #s then return sub(s, 1, -2) end -- the usual "\r\n" end: the only "\r" is the last byte
  return (gsub(s, "\r", ""))
end

-- "*l": a line without its "\n", every "\r" dropped (LuaSocket's recvline)
local function receive_line(self, prefix)
  while true do
    local nl = find(self.buf, "\n", self.pos, true)
    if nl then
      local line = sub(self.buf, self.pos, nl - 1)
      self.pos = nl + 1
      return prefix .. strip_cr(line), nil, nil
    end
    local err, raise = fill(self)
    if err == false then error(raise, 0) end
    if err then return nil, err, prefix .. strip_cr(take_all(self)) end
  end
end

-- a count: n bytes (gathered piece by piece: a large count never copies what it has)
local function receive_count(self, prefix, n)
  local have = #self.buf - self.pos + 1
  if have == 0 then -- nothing buffered (a reply's first read): what comes may hold it all
    local err, raise = fill(self)
    if err == false then error(raise, 0) end
    if err then return nil, err, prefix end
    have = #self.buf - self.pos + 1
  end
  if have >= n then
    local data = sub(self.buf, self.pos, self.pos + n - 1)
    self.pos = self.pos + n
    return prefix .. data, nil, nil
  end
  local parts, k = { prefix, take_all(self) }, 2
  while have < n do
    local err, raise = fill(self)
    if err == false then put_back(self, parts, k, raise) end
    if err then return nil, err, concat(parts, "", 1, k) end
    local chunk, need = self.buf, n - have
    k = k + 1
    if #chunk <= need then
      parts[k] = chunk
      self.buf = ""
      have = have + #chunk
    else
      parts[k] = sub(chunk, 1, need)
      self.pos = need + 1
      have = n
    end
  end
  return concat(parts, "", 1, k), nil, nil
end

-- "*a": until the peer closes; "closed" only when nothing at all came
local function receive_all(self, prefix)
  local parts, k = { prefix, take_all(self) }, 2
  local got = #parts[2] > 0
  while true do
    local err, raise = fill(self)
    if err == false then put_back(self, parts, k, raise) end
    if err == "closed" then
      if got then return concat(parts, "", 1, k), nil, nil end
      return nil, "closed", concat(parts, "", 1, k)
    elseif err then
      return nil, err, concat(parts, "", 1, k)
    end
    k = k + 1
    parts[k] = take_all(self)
    got = true
  end
end

-- The fast path, while this object's own buffer is empty: the stream's C buffer serves a
-- line or a count (net.socket_take) and the call waits in place for more. Anything else
-- (the end, an error, the timeout, a line or count beyond the C buffer's bound) returns
-- nil, and the general path below goes on from there: it moves what the C buffer holds
-- into the Lua one and makes the partial result, as before.
local function take_fast(self, prefix, n)
  local h = self.h
  if h == nil or self.rclosed or self.pos <= #self.buf then return nil end
  while true do
    local data, used = socket_take(h, n)
    if data then
      self.received = self.received + used
      return prefix .. data
    end
    if used ~= "wait" then return nil end
    local ok, done = pcall(wait_readable, h, self.tm)
    self.receiving = true
    if not ok then
      message(done) -- raises again what is no socket error (a cancellation)
      return nil
    end
    if not done then return nil end
  end
end

-- A receive that runs (not one waiting for data) keeps self.buf and self.pos in its
-- locals between Lua's allocations, and an allocation may run a finalizer: one calling
-- receive on the same object then took the same bytes again, or had its bytes
-- overwritten by the first receive's (duplicated or lost data). self.receiving says a
-- receive may be running: set on entry and after each wait, cleared on return (not on an
-- error: a receive cut short by a cancellation leaves it set, stale). Then a receive on
-- this object among the callers of this one says whether it is so.
local function receive_running(self)
  local level = 3
  while true do
    local info = getinfo(level, "f")
    if info == nil then return false end
    if info.func == tcp.receive then
      local _, caller_self = getlocal(level, 1)
      if caller_self == self then return true end
    end
    level = level + 1
  end
end

local function received(self, data, err, partial)
  self.receiving = false
  return data, err, partial
end

-- receive([pattern [, prefix]]): "*l" (default), "*a", a byte count; also "l" and "a"
function tcp:receive(pattern, prefix)
  check(self, "receive")
  if prefix == nil then
    prefix = ""
  else
    prefix = lib.check_string("receive", prefix, 2)
  end
  if self.receiving and receive_running(self) then
    error(("receive: %s: called inside another receive on it (by a finalizer or a hook that ran " ..
      "there); a socket's receives run one at a time"):format(tostring(self)), 2)
  end
  self.receiving = true
  self.tm.start = false -- Timeout:markstart(), inlined on these hot paths
  if pattern == nil or pattern == "*l" then -- the common case first
    local line = take_fast(self, prefix, nil)
    if line then
      self.receiving = false
      return line, nil, nil
    end
    return received(self, receive_line(self, prefix))
  end
  local n = tonumber(pattern)
  if n then
    if n < 0 then error("bad argument #1 to 'receive' (invalid receive pattern)", 2) end
    n = floor(n)
    if #prefix > 0 and n <= #prefix then return received(self, prefix, nil, nil) end
    local data = take_fast(self, prefix, n - #prefix)
    if data then
      self.receiving = false
      return data, nil, nil
    end
    return received(self, receive_count(self, prefix, n - #prefix))
  end
  pattern = pattern == nil and "*l" or pattern
  if type(pattern) ~= "string" then
    error("bad argument #1 to 'receive' (string expected, got " .. type(pattern) .. ")", 2)
  end
  local p = sub(pattern, 1, 1) == "*" and sub(pattern, 2, 2) or pattern
  if p == "l" then return received(self, receive_line(self, prefix)) end
  if p == "a" then return received(self, receive_all(self, prefix)) end
  error("bad argument #1 to 'receive' (invalid receive pattern)", 2)
end

-- dirty(): received data waits in the buffer
function tcp:dirty()
  check(self, "dirty")
  if self.pos <= #self.buf then return true end
  local h = self.h
  if h == nil or self.rclosed then return false end
  local ok, status, data = pcall(read_some, h)
  if ok and status == "ok" and self.h == h then -- (not closed by a finalizer in the read)
    self.received = self.received + #data
    self.buf, self.pos = data, 1
    return true
  end
  return false
end

-- ---- sending ------------------------------------------------------------------------------

-- send(data [, i [, j]]) -> index of the last byte sent; nil, err, last index sent.
-- The data is handed to the stream at once; when its buffer is above the high-water mark
-- the call waits (within the timeout) for the peer to take it, so a slow peer slows the
-- sender as a full socket buffer would.
function tcp:send(data, i, j)
  check(self, "send")
  data = lib.check_string("send", data, 1)
  local size = #data
  if i == nil and j == nil then -- the whole string, as most callers send
    i, j = 1, size
  else
    i = tointeger(floor(tonumber(i) or 1))
    j = tointeger(floor(tonumber(j) or -1))
    if i < 0 then i = size + i + 1 end
    if j < 0 then j = size + j + 1 end
    if i < 1 then i = 1 end
    if j > size then j = size end
  end
  self.tm.start = false -- Timeout:markstart(), inlined on these hot paths
  local h = self.h
  if h == nil or self.wclosed then return nil, "closed", i - 1.0 end
  if i > j then return i - 1.0, nil, nil end
  local ok, err = pcall(net_write, h, (i == 1 and j == size) and data or sub(data, i, j))
  if not ok then return nil, message(err), i - 1.0 end
  self.sent = self.sent + (j - i + 1)
  local needed
  ok, needed = pcall(drain_needed, h)
  if not ok then return nil, message(needed), i - 1.0 end
  if needed then
    local wok, done = pcall(wait_drained, h, self.tm)
    if not wok then return nil, message(done), j + 0.0 end
    if not done then return nil, "timeout", j + 0.0 end
  end
  return j + 0.0, nil, nil
end

-- ---- connecting ---------------------------------------------------------------------------

local function keepalive(self)
  return self.options.keepalive and 60 or nil
end

-- Waits for the connection attempt self.pending (its stream); 1, or nil and the error.
local function finish_connect(self)
  local p = self.pending
  local done = wait(wait_read(p), self.tm:left())
  if not done then return nil, "timeout" end
  self.pending = nil
  local ok, err = pcall(net.connect_finish, p)
  if ok then
    self.h, self.state = p, "client"
    return 1.0
  end
  net.close(p)
  return nil, message(err)
end

-- Starts connecting to one address and waits for it: 1, or nil and the error.
local function connect_to(self, address, port)
  local ok, h = pcall(net.tcp_connect, address, port, self.options["tcp-nodelay"], keepalive(self),
    self.local_ip, self.local_port)
  if not ok then return nil, message(h) end
  net.socket_idle(h)
  self.pending = h
  return finish_connect(self)
end

-- connect(host, port): each address of host in turn (of the socket's family, if it has
-- one); on timeout the attempt goes on and a later connect (or select for writing) sees it.
-- A socket bound by bind() (which listens at once, see below) stops listening and
-- connects from the address and port it was bound to.
function tcp:connect(host, port)
  check(self, "connect")
  host = lib.check_string("connect", host, 1)
  local err
  port, err = lib.check_service("connect", port, 2)
  if not port then return nil, err end
  self.tm.start = false -- Timeout:markstart(), inlined on these hot paths
  if self.pending then return finish_connect(self) end
  if self.closed then return nil, "closed" end
  if self.state == "client" then return nil, "already connected" end
  if self.state ~= "master" then return nil, "closed" end
  if self.l then
    local ok, lhost, lport = pcall(net.listener_sockname, self.l)
    net.listener_close(self.l)
    self.l, self.accepted = nil, nil
    if not ok or lhost == nil then return nil, "closed" end
    self.local_ip, self.local_port = lhost, lport
  end
  local family = parse_ip(host)
  if family and type(port) == "number" and (self.family == nil or self.family == family) then
    return connect_to(self, host, port) -- an address and a port: no lookup, no list
  end
  local list
  list, err = lib.resolve(host, port, self.family, "stream")
  if not list then return nil, err end
  for _, ai in ipairs(list) do
    local res
    res, err = connect_to(self, ai.address, ai.port)
    if res or err == "timeout" then return res, err end
  end
  return nil, err
end

-- ---- servers ------------------------------------------------------------------------------

-- bind(address, port): listens at once (alua's listeners are bound and listening in one
-- step); listen() then only changes the state.
function tcp:bind(host, port)
  check(self, "bind", "master")
  host = lib.check_string("bind", host, 1)
  local list, err
  port, err = lib.check_service("bind", port, 2)
  if not port then return nil, err end
  list, err = lib.resolve(host, port, self.family, "stream", true)
  if not list then return nil, err end
  for _, ai in ipairs(list) do
    local ok, l = pcall(net.tcp_listen, ai.address, ai.port, self.backlog or BACKLOG,
      self.options.reuseport, ai.family == "inet6" and self.options["ipv6-v6only"] ~= false)
    if ok then
      net.listener_options(l, nil, self.options["tcp-nodelay"], keepalive(self), true)
      net.socket_idle(l)
      self.l, self.family = l, self.family or ai.family
      return 1.0
    end
    err = message(l)
  end
  return nil, err
end

function tcp:listen()
  check(self, "listen", "master")
  if not self.l then return nil, "not bound" end
  self.state = "server"
  return 1.0
end

-- accept() -> a tcp{client}, or nil, "timeout" / "closed" / a message
function tcp:accept()
  check(self, "accept", "server")
  local l = self.l
  self.tm.start = false -- Timeout:markstart(), inlined on these hot paths
  while true do
    if l == nil then return nil, "closed" end
    local status, h, err = "ok", nil, nil
    if self.accepted then
      h = self.accepted
      self.accepted = nil
    else
      status, h = net.accept(l)
      if status ~= "ok" then h, err = nil, h end
    end
    if status == "ok" then
      local c = new(self.family, "client")
      net.socket_idle(h)
      c.h = h
      return c
    elseif status == "closed" then
      return nil, "closed"
    elseif status == "error" or status == "starved" then
      return nil, message(err)
    end
    local f = net.wait_accept(l)
    if f and not wait(f, self.tm:left()) then return nil, "timeout" end
  end
end

-- ---- names, options, closing ----------------------------------------------------------------

local function with_family(host, port)
  if host == nil then return nil, "getpeername failed" end
  return host, port, net.parse_ip(host) or "inet"
end

function tcp:getpeername()
  check(self, "getpeername")
  if not self.h then return nil, "getpeername failed" end
  local ok, host, port = pcall(net.peername, self.h)
  if not ok then return nil, message(host) end
  return with_family(host, port)
end

function tcp:getsockname()
  check(self, "getsockname")
  local ok, host, port
  if self.h then
    ok, host, port = pcall(net.sockname, self.h)
  elseif self.l then
    ok, host, port = pcall(net.listener_sockname, self.l)
  else
    return nil, "getsockname failed"
  end
  if not ok or host == nil then return nil, "getsockname failed" end
  return host, tostring(port), net.parse_ip(host) or "inet" -- the port as a string, as LuaSocket 3.1's
end

-- settimeout, gettimeout, getfamily, setoption, getoption (lib.add_common).
-- Options: tcp-nodelay (on by default, as on every alua stream) and keepalive apply at
-- once on a connected socket, else when it connects or binds; reuseaddr is always on for
-- listeners (libuv's choice); linger and the keep* options are kept and reported.
local function apply(self, name, value)
  if self.h == nil or (name ~= "tcp-nodelay" and name ~= "keepalive") then return nil end
  local ok, err
  if name == "tcp-nodelay" then
    ok, err = pcall(net.tcp_options, self.h, value and true or false)
  else
    ok, err = pcall(net.tcp_options, self.h, nil, value and true or false)
  end
  if not ok then return message(err) end
end

lib.add_common(tcp, check, {
  keepalive = true, reuseaddr = true, reuseport = true, ["tcp-nodelay"] = true, linger = true,
  ["ipv6-v6only"] = true, keepidle = true, keepcnt = true, keepintvl = true,
}, apply)

-- shutdown("both" | "send" | "receive")
function tcp:shutdown(how)
  check(self, "shutdown", "client")
  how = how or "both"
  if how ~= "both" and how ~= "send" and how ~= "receive" then
    error("bad argument #1 to 'shutdown' (invalid shutdown method)", 2)
  end
  if how ~= "receive" and not self.wclosed then
    self.wclosed = true
    pcall(net.write_eof, self.h)
  end
  if how ~= "send" then self.rclosed = true end
  return 1.0
end

function tcp:close()
  check(self, "close")
  if self.h then net.close(self.h) end
  if self.pending then net.close(self.pending) end
  if self.l then net.listener_close(self.l) end
  self.h, self.l, self.pending, self.closed = nil, nil, nil, true
  self.buf, self.pos = "", 1
  return 1.0
end
TCP.__close = tcp.close

-- getfd(): the descriptor (-1 when closed or not yet made), to look at, not to use:
-- libuv owns it. setfd is not offered.
function tcp:getfd()
  check(self, "getfd")
  local handle = self.h or self.l
  return (handle and net.fileno(handle) or -1) + 0.0 -- a float, as LuaSocket's
end

function tcp:getstats()
  check(self, "getstats")
  return self.received, self.sent, lib.now() - self.birthday
end

function tcp:setstats(received, sent, age)
  check(self, "setstats")
  self.received = tonumber(received) or self.received
  self.sent = tonumber(sent) or self.sent
  if tonumber(age) then self.birthday = lib.now() - tonumber(age) end
  return 1.0
end

-- The handle of a connected client (for the ssl layer, which takes the stream over).
function tcp:_stream() return self.h end

-- ---- select's view ------------------------------------------------------------------------

function tcp:_readable()
  if self.state == "server" then
    local l = self.l
    if l == nil then return false end
    if self.accepted then return true end
    local status, h = net.accept(l)
    if status == "ok" then self.accepted = h end
    return status == "ok" or status == "closed"
  end
  if self.h == nil or self.rclosed then return false end
  if self.pos <= #self.buf then return true end
  -- what receive would see first: data, the end of the stream or an error
  local h = self.h
  local ok, status, data = pcall(read_some, h)
  if ok and status == "ok" and self.h == h then -- (not closed by a finalizer in the read)
    self.received = self.received + #data
    self.buf, self.pos = data, 1
  end
  return not ok or status ~= "wait"
end

function tcp:_read_waiter()
  if self.state == "server" and self.l then return net.wait_accept(self.l) end
  if self.h and not self.rclosed then
    local ok, f = pcall(wait_read, self.h)
    if ok then return f end
  end
end

function tcp:_writable()
  if self.state ~= "client" or self.h == nil then return false end
  local ok, needed = pcall(drain_needed, self.h)
  return not ok or not needed
end

function tcp:_write_waiter()
  if self.pending then return wait_read(self.pending) end
  if self.h then
    local ok, f = pcall(wait_drain, self.h)
    if ok then return f end
  end
end

-- ---- constructors -------------------------------------------------------------------------

-- tcp(), tcp4(), tcp6(): a new master socket (tcp() takes its family from the first
-- address it connects or binds to)
function socket.tcp() return new(nil) end
function socket.tcp4() return new("inet") end
function socket.tcp6()
  local s = new("inet6")
  s.options["ipv6-v6only"] = true
  return s
end

-- connect(host, port [, lhost [, lport [, family]]]) -> a connected tcp{client}; with
-- lhost ("*": any) the socket connects from that address and port (lport, default 0: any),
-- and only to addresses of its family.
function socket.connect(host, port, lhost, lport, family)
  if family ~= nil and family ~= "inet" and family ~= "inet6" and family ~= "unspec" then
    error("bad argument #5 to 'connect' (invalid option '" .. tostring(family) .. "')", 2)
  end
  local s = new(family ~= "unspec" and family or nil)
  if lhost ~= nil then
    lhost = lib.check_string("connect", lhost, 3)
    local list, err
    if lport == nil then lport = 0 else lport, err = lib.check_service("connect", lport, 4) end
    if not lport then return nil, err end
    list, err = lib.resolve(lhost, lport, s.family, "stream", true)
    if not list then return nil, err end
    s.family, s.local_ip, s.local_port = list[1].family, list[1].address, list[1].port
  end
  local ok, err = s:connect(host, port)
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

function socket.connect4(host, port, lhost, lport) return socket.connect(host, port, lhost, lport, "inet") end
function socket.connect6(host, port, lhost, lport) return socket.connect(host, port, lhost, lport, "inet6") end

-- bind(host, port [, backlog]) -> a tcp{server}
function socket.bind(host, port, backlog)
  local s = new(nil)
  s.backlog = tointeger(tonumber(backlog))
  local ok, err = s:bind(host, port)
  if not ok then return nil, err end
  s:listen(backlog)
  return s
end

lib.tcp_class = TCP
lib.tcp_methods = tcp
