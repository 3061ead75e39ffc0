-- streams.lua — open_connection, start_server, StreamReader, StreamWriter, Unix sockets,
-- UDP and getaddrinfo, on the socket primitives of async/net/ (core.net).
-- The C side buffers and signals; every method that may wait loops "try in C, else await
-- the future the next I/O event completes".
local core, asyncio, imports = ...
local arg_error = core._arg_error -- bad arguments, reported at the user's line
local tlslib = imports.tls -- tls.lua: the ssl option
local M = {} -- what this part exports (asyncio.lua adds it to the module)

local net = core.net
local async, await, create_task, Future = asyncio.async, asyncio.await, asyncio.create_task, asyncio.Future
local CancelledError, OSError = asyncio.CancelledError, asyncio.OSError
local type, error, pcall, xpcall, setmetatable, tostring, ipairs = type, error, pcall, xpcall, setmetatable, tostring, ipairs
local concat, tointeger = table.concat, math.tointeger

local read_line, read_some = net.read_line, net.read_some
local wait_read, net_write = net.wait_read, net.write

-- The options each function takes, and their types: an unknown key or a wrong type is
-- an error at the user's line that names it (and the nearest known key).
local TLS = { ssl = "boolean|table", ssl_handshake_timeout = "number" }
local function options(t, with_tls)
  if with_tls then for k, v in pairs(TLS) do t[k] = v end end
  return t
end
local OPTIONS = {
  open_connection = options({ limit = "number", nodelay = "boolean", keepalive = "boolean|number",
    family = "string", timeout = "number" }, true),
  open_unix_connection = options({ limit = "number", timeout = "number" }, true),
  start_server = options({ limit = "number", backlog = "number", reuse_port = "boolean",
    nodelay = "boolean", keepalive = "boolean|number", family = "string",
    start_serving = "boolean" }, true),
  start_unix_server = options({ limit = "number", backlog = "number", start_serving = "boolean" }, true),
  open_udp = { local_addr = "table", remote_addr = "table", reuse_port = "boolean",
    allow_broadcast = "boolean", family = "string" },
  getaddrinfo = { family = "string", type = "string", passive = "boolean" },
}

local function check_opts(fname, opts)
  if opts == nil then return {} end
  core._check_options(fname, opts, OPTIONS[fname])
  if opts.limit ~= nil and (tointeger(opts.limit) == nil or opts.limit <= 0) then
    arg_error(fname .. ": limit must be a positive integer, got " .. tostring(opts.limit))
  end
  if opts.family ~= nil and opts.family ~= "inet" and opts.family ~= "inet6" then
    arg_error(fname .. ": unknown family '" .. opts.family .. "' (expected \"inet\" or \"inet6\")")
  end
  return opts
end

local function check_port(fname, port, optional)
  if port == nil and optional then return nil end
  local p = tointeger(port) or (type(port) == "string" and port ~= "" and port)
  if not p then arg_error(fname .. ": port must be an integer or a service name, got " .. tostring(port)) end
  if type(p) == "number" and (p < 0 or p > 65535) then
    arg_error(fname .. ": port must be in 0..65535, got " .. p)
  end
  return p
end

local function keepalive_seconds(v)
  if v == true then return 60 end
  if type(v) == "number" and v > 0 then return tointeger(v) or math.ceil(v) end
  return nil
end

-- ---- StreamReader ------------------------------------------------------------------

local Reader = {}
Reader.__index = Reader
Reader.__name = "StreamReader"

function Reader:__tostring() return "<StreamReader " .. tostring(self._h) .. ">" end

-- The methods that may wait (read, readline, readuntil, readexactly, drain) are in C
-- (async/net/streamlib.c): each returns an operation that, awaited, reads from the buffer at
-- once and waits for the next read event only when it must. Reading to the end of the
-- stream gathers every piece here.
local read_to_eof = async(function(h)
  local parts, k = {}, 0
  while true do
    local status, data = read_some(h)
    if status == "eof" then break end
    if status == "ok" then
      k = k + 1
      parts[k] = data
    else -- "wait"
      await(wait_read(h, "read"))
    end
  end
  return concat(parts, "", 1, k)
end, "StreamReader.read")

local DONE = Future() -- what drain returns when there is nothing to wait for
DONE:set_result()
local methods = net.stream_methods(read_to_eof, DONE)
Reader.read, Reader.readline, Reader.readuntil = methods.read, methods.readline, methods.readuntil
Reader.readexactly = methods.readexactly

function Reader:at_eof() return net.at_eof(self._h) end

-- lines(): for a generic for, each line without its end of line ("\n" or "\r\n"),
-- the partial last line included, until the end of the stream.
function Reader:lines()
  local h = self._h
  return function()
    while true do
      local status, line = read_line(h, true)
      if status == "ok" then return line end
      if status == "eof" then return nil end
      await(wait_read(h, "lines"))
    end
  end
end

-- ---- StreamWriter ------------------------------------------------------------------

local Writer = {}
Writer.__index = Writer
Writer.__name = "StreamWriter"

function Writer:__tostring() return "<StreamWriter " .. tostring(self._h) .. ">" end

Writer.write = methods.write

function Writer:writelines(list)
  if type(list) ~= "table" then arg_error("writelines: expected a list of strings, got " .. type(list)) end
  local ok, data = pcall(concat, list)
  if not ok then -- (concat's words would name a line of this file)
    for i = 1, #list do
      local t = type(list[i])
      if t ~= "string" and t ~= "number" then
        arg_error("writelines: expected a list of strings, got a " .. t .. " at index " .. i)
      end
    end
    error(data, 0)
  end
  net_write(self._h, data)
end

Writer.drain = methods.drain

function Writer:close() net.close(self._h) end
Writer.__close = Writer.close
-- abort(): closes at once, discarding what is queued (Python's transport.abort())
function Writer:abort() net.abort(self._h) end

Writer.wait_closed = async(function(self)
  local f = net.wait_closed(self._h)
  if f then await(f) end
end, "StreamWriter.wait_closed")

function Writer:is_closing() return net.is_closing(self._h) end
function Writer:write_eof() net.write_eof(self._h) end
function Writer:can_write_eof() return true end -- TLS: close_notify, then the TCP half-close

-- get_extra_info("peername" | "sockname" [, default]): host, port (a Unix socket: its path)
function Writer:get_extra_info(name, default)
  if name == "peername" then
    return net.peername(self._h)
  elseif name == "sockname" then
    return net.sockname(self._h)
  elseif name == "kind" then
    return net.stream_kind(self._h)
  elseif name == "ssl" then
    return net.tls_info(self._h) or default
  elseif name == "peercert" then
    return net.tls_peercert(self._h) or default
  end
  return default
end

function Writer:set_write_buffer_limits(high, low)
  for _, v in ipairs({ { "high", high }, { "low", low } }) do
    local n = tonumber(v[2]) -- (a numeric string, as the C function's luaL_checknumber takes)
    if v[2] ~= nil and (n == nil or n < 0) then
      arg_error("set_write_buffer_limits: " .. v[1] .. " must be a number of bytes >= 0 or nil, got "
        .. core._describe(v[2]))
    end
  end
  net.set_write_limits(self._h, high, low)
end
function Writer:get_write_buffer_size() return net.write_buffer_size(self._h) end

-- The reader and writer of one stream userdata (also used by subprocess pipes).
local function make_streams(h)
  local reader = setmetatable({ _h = h }, Reader)
  local writer = setmetatable({ _h = h, reader = reader }, Writer)
  return reader, writer
end
M.StreamReader, M.StreamWriter = Reader, Writer

-- ---- names -------------------------------------------------------------------------

local function lookup(host, port, family, socktype, passive)
  local service = port ~= nil and tostring(tointeger(port) or port) or nil
  local req, fut = net.getaddrinfo(host, service, family, socktype, passive)
  local ok, err = pcall(await, fut)
  if not ok then
    net.getaddrinfo_cancel(req)
    error(err, 0)
  end
  return net.getaddrinfo_result(req, host)
end

-- getaddrinfo(host, port, {family = "inet"|"inet6", type = "stream"|"dgram", passive = bool})
-- -> list of {family=, address=, port=}, on libuv's resolver.
M.getaddrinfo = async(function(host, port, opts)
  if host ~= nil and type(host) ~= "string" then
    arg_error("getaddrinfo: host must be a string or nil, got " .. type(host))
  end
  opts = check_opts("getaddrinfo", opts)
  if opts.type ~= nil and opts.type ~= "stream" and opts.type ~= "dgram" then
    arg_error("getaddrinfo: unknown type '" .. opts.type .. "' (expected \"stream\" or \"dgram\")")
  end
  return lookup(host, check_port("getaddrinfo", port, true), opts.family, opts.type, opts.passive)
end, "getaddrinfo")

-- An IP address with a numeric port needs no lookup (a service name does: "http").
local function resolve(fname, host, port, socktype, passive, family)
  local fam = host and (port == nil or tointeger(port)) and net.parse_ip(host)
  if fam and (family == nil or family == fam) then
    return { { family = fam, address = host, port = tointeger(port) or 0 } }
  end
  local list = lookup(host, port, family, socktype, passive)
  if #list == 0 then
    error(OSError(fname .. ": no address found for host '" .. tostring(host) .. "'",
      { errno = "EAI_NONAME", syscall = "getaddrinfo", host = host }), 0)
  end
  return list
end

-- ---- connecting --------------------------------------------------------------------

-- Waits for the connection of the new stream h; on failure or cancellation closes it.
local function connect_stream(h, target)
  local ok, err = pcall(await, wait_read(h))
  if ok then ok, err = pcall(net.connect_finish, h) end
  if ok then return end
  net.close(h)
  if OSError:is(err) and target then err.message = err.message .. " (connecting to " .. target .. ")" end
  error(err, 0)
end

local function first_error(fname, errs)
  if #errs == 1 then return errs[1] end
  local msgs, same = {}, true
  for i, e in ipairs(errs) do
    msgs[i] = tostring(e.message)
    same = same and e.errno == errs[1].errno
  end
  if same then return errs[1] end
  return OSError(fname .. ": multiple errors: " .. concat(msgs, "; "), { errno = errs[1].errno, errors = errs })
end

-- opts.timeout: the whole connection (every address tried, the TLS handshake) runs in a
-- timeout scope; when it passes, a TimeoutError that says what was not reached in time
-- (what the porting user who wrote {timout = 1} wanted; Python needs wait_for for it).
local function within(fname, what, timeout, connect, ...)
  if timeout == nil then return connect(...) end
  if timeout ~= timeout then arg_error(fname .. ": timeout must be a number of seconds, got NaN") end
  local ok, reader, writer = pcall(await, asyncio.with_timeout(timeout, connect, ...))
  if ok then return reader, writer end
  if asyncio.TimeoutError:is(reader) and reader.message == "timeout: the deadline passed" then
    error(asyncio.TimeoutError(("%s: no connection to %s within %g s"):format(fname, what, timeout),
      { cause = reader.cause }), 0)
  end
  error(reader, 0)
end

local function connect_tcp(host, port, opts, tls)
  local addrs = resolve("open_connection", host, port, "stream", false, opts.family)
  local errs = {}
  for _, ai in ipairs(addrs) do
    local h = net.tcp_connect(ai.address, ai.port, opts.nodelay, keepalive_seconds(opts.keepalive))
    if opts.limit then net.set_limit(h, opts.limit) end
    local target = ai.address .. " port " .. ai.port
    local ok, err = pcall(connect_stream, h, target)
    if ok then
      if tls then tlslib.handshake(h, tls, false, tls.server_hostname or host, "connecting to " .. target) end
      return make_streams(h)
    end
    if not OSError:is(err) then error(err, 0) end
    errs[#errs + 1] = err
  end
  error(first_error("open_connection", errs), 0)
end

-- open_connection(host, port, {limit=, nodelay=, keepalive=, family=, timeout=, ssl=,
-- ssl_handshake_timeout=}) -> reader, writer. Each address of the host is tried in turn;
-- TLS (tls.lua) then runs its handshake on the connection made.
M.open_connection = async(function(host, port, opts)
  opts = check_opts("open_connection", opts)
  if type(host) ~= "string" then arg_error("open_connection: host must be a string, got " .. type(host)) end
  port = check_port("open_connection", port)
  local tls = opts.ssl and tlslib.client("open_connection", opts)
  return within("open_connection", host .. " port " .. port, opts.timeout, connect_tcp, host, port, opts, tls)
end, "open_connection")

local function connect_unix(path, opts, tls)
  local h = net.pipe_connect(path)
  if opts.limit then net.set_limit(h, opts.limit) end
  connect_stream(h, path)
  if tls then tlslib.handshake(h, tls, false, tls.server_hostname, "connecting to " .. path) end
  return make_streams(h)
end

-- open_unix_connection(path, {limit=, timeout=, ssl=, ssl_handshake_timeout=}) -> reader,
-- writer (a verifying TLS client needs ssl.server_hostname: a path names no server)
M.open_unix_connection = async(function(path, opts)
  opts = check_opts("open_unix_connection", opts)
  if type(path) ~= "string" then arg_error("open_unix_connection: path must be a string, got " .. type(path)) end
  local tls = opts.ssl and tlslib.client("open_unix_connection", opts)
  if tls and tls.verify and not tls.server_hostname then
    arg_error("open_unix_connection: ssl needs server_hostname to verify the server (or verify = false)")
  end
  return within("open_unix_connection", path, opts.timeout, connect_unix, path, opts, tls)
end, "open_unix_connection")

-- ---- servers -----------------------------------------------------------------------

local Server = {}
Server.__index = Server
Server.__name = "Server"

-- The body of a connection's task: errors are reported (nobody awaits this task) and
-- close the connection; a normal return leaves the writer to the callback, as in Python.
local function run_handler(cb, reader, writer)
  local tb
  local ok, err = xpcall(function()
    local res = cb(reader, writer)
    if asyncio.iscoroutine(res) then await(res) end
  end, function(e)
    tb = type(e) == "table" and e.traceback or core._traceback(e, 2)
    return e
  end)
  if ok then return end
  writer:close()
  if CancelledError:is(err) then error(err, 0) end
  core._report("Unhandled error in a client_connected_cb of start_server:", err, tb)
end

-- Takes what the listener accepted (in C) and starts a task per connection; re-armed on
-- the next accept until the listener closes. A callback, not a task: a server is no task.
local function serve(server, l)
  while true do
    local status, h, first = net.accept(l)
    if status == "ok" and server._tls then
      create_task(tlslib.serve, server._tls, h, run_handler, server._cb, make_streams)
    elseif status == "ok" then
      create_task(run_handler, server._cb, make_streams(h))
    elseif status == "closed" then
      return
    elseif status == "starved" then
      -- out of descriptors: the connections wait in the backlog; try again shortly
      if first then
        core._report("start_server: out of file descriptors, new connections wait until some are closed:", h)
      end
      asyncio.get_running_loop():call_later(0.1, serve, server, l)
      return
    elseif status == "error" then
      core._report("start_server: accepting a connection failed:", h)
    else -- "wait"
      break
    end
  end
  local f = net.wait_accept(l)
  if f then f:add_done_callback(function() serve(server, l) end) end
end

local function new_server(cb, listeners, tls)
  local server = setmetatable({ _cb = cb, _listeners = listeners, _tls = tls }, Server)
  for _, l in ipairs(listeners) do serve(server, l) end
  return server
end

function Server:__tostring()
  local host, port = self:sockname()
  return "<Server " .. tostring(host) .. (port and (" port " .. port) or "")
    .. (self:is_serving() and "" or " closed") .. ">"
end

-- sockname(): host, port of the first listening socket (a Unix server: its path)
function Server:sockname() return net.listener_sockname(self._listeners[1]) end

-- socknames(): the {host, port} of every listening socket
function Server:socknames()
  local list = {}
  for _, l in ipairs(self._listeners) do
    local host, port = net.listener_sockname(l)
    if host then list[#list + 1] = { host, port } end
  end
  return list
end

function Server:is_serving()
  for _, l in ipairs(self._listeners) do
    if net.listener_is_serving(l) then return true end
  end
  return false
end

-- close(): stops listening; connections already made go on.
function Server:close()
  for _, l in ipairs(self._listeners) do net.listener_close(l) end
  local f = self._serving_forever
  if f and not f:done() then f:cancel() end
end

-- wait_closed(): until closed and every connection it accepted is closed (Python 3.12).
Server.wait_closed = async(function(self)
  for _, l in ipairs(self._listeners) do
    local f = net.listener_wait_closed(l)
    if f then await(f) end
  end
end, "Server.wait_closed")

-- start_serving(): accepts connections (start_server's start_serving = false waits for it)
Server.start_serving = async(function(self)
  for _, l in ipairs(self._listeners) do net.listener_serve(l) end
end, "Server.start_serving")

-- serve_forever(): until cancelled (or the server closed); then the server is closed.
Server.serve_forever = async(function(self)
  if self._serving_forever then arg_error("serve_forever: the server is already being awaited") end
  for _, l in ipairs(self._listeners) do net.listener_serve(l) end
  if not self:is_serving() then arg_error("serve_forever: the server is closed") end
  local f = Future()
  self._serving_forever = f
  local ok, err = pcall(await, f)
  self._serving_forever = nil
  self:close()
  if not ok then error(err, 0) end
end, "Server.serve_forever")

function Server:__close()
  self:close()
  await(self:wait_closed())
end

-- start_server(cb, host, port, {limit=, backlog=, reuse_port=, nodelay=, keepalive=, family=,
-- start_serving=, ssl=, ssl_handshake_timeout=}): with ssl, each connection's TLS handshake
-- runs in its task before cb.
-- host nil or "": every interface; a list of hosts: each. Port 0 picks a free port (the
-- same one for every address).
M.start_server = async(function(cb, host, port, opts)
  if type(cb) ~= "function" then arg_error("start_server: the callback must be a function, got " .. type(cb)) end
  opts = check_opts("start_server", opts)
  port = check_port("start_server", port, true) or 0
  local tls = opts.ssl and tlslib.server("start_server", opts)
  local hosts = type(host) == "table" and host or { host ~= "" and host or nil }
  local addrs, seen = {}, {}
  for i = 1, math.max(#hosts, 1) do
    for _, ai in ipairs(resolve("start_server", hosts[i], port, "stream", true, opts.family)) do
      if not seen[ai.address] then
        seen[ai.address] = true
        addrs[#addrs + 1] = ai
      end
    end
  end
  local listeners, chosen = {}, nil
  local keepalive = keepalive_seconds(opts.keepalive)
  for i, ai in ipairs(addrs) do
    local ok, l = pcall(net.tcp_listen, ai.address, chosen or ai.port, opts.backlog, opts.reuse_port, true)
    if ok then
      net.listener_options(l, opts.limit, opts.nodelay, keepalive, opts.start_serving ~= false)
      listeners[#listeners + 1] = l
      if ai.port == 0 and not chosen then chosen = select(2, net.listener_sockname(l)) end
    elseif not (hosts[1] == nil and i > 1 and OSError:is(l)
        and (l.errno == "EAFNOSUPPORT" or l.errno == "EADDRNOTAVAIL")) then
      for _, done in ipairs(listeners) do net.listener_close(done) end
      error(l, 0)
    end
  end
  return new_server(cb, listeners, tls)
end, "start_server")

-- start_unix_server(cb, path, {limit=, backlog=, start_serving=, ssl=, ssl_handshake_timeout=}):
-- a stale socket file at path is replaced; the file is removed when the server closes.
M.start_unix_server = async(function(cb, path, opts)
  if type(cb) ~= "function" then arg_error("start_unix_server: the callback must be a function, got " .. type(cb)) end
  opts = check_opts("start_unix_server", opts)
  if type(path) ~= "string" then arg_error("start_unix_server: path must be a string, got " .. type(path)) end
  local tls = opts.ssl and tlslib.server("start_unix_server", opts)
  local l = net.pipe_listen(path, opts.backlog)
  net.listener_options(l, opts.limit, nil, nil, opts.start_serving ~= false)
  return new_server(cb, { l }, tls)
end, "start_unix_server")

-- ---- UDP ---------------------------------------------------------------------------

local UDPSocket = {}
UDPSocket.__index = UDPSocket
UDPSocket.__name = "DatagramSocket"

function UDPSocket:__tostring() return "<DatagramSocket " .. tostring(self._u) .. ">" end
function UDPSocket:sockname() return net.udp_sockname(self._u) end
function UDPSocket:peername() return net.udp_peername(self._u) end

-- sendto(data [, host, port]): host is an IP address (or "localhost"); without it the
-- remote_addr the socket was opened with.
-- (what udp_send would refuse is named here, at the user's line)
local function sendto_error(data, host, port)
  if type(data) ~= "string" and type(data) ~= "number" then
    arg_error("sendto: data must be a string, got " .. type(data))
  elseif type(host) ~= "string" then
    arg_error("sendto: host must be a string (an IP address) or nil, got " .. type(host))
  end
  arg_error("sendto: port must be an integer in 1..65535, got " .. core._describe(port))
end

function UDPSocket:sendto(data, host, port)
  -- the port as converted (a numeric string is one, as luaL_checkinteger takes it)
  local p = port
  if host ~= nil then p = tointeger(port) end
  -- (data a number is its text, as udp_send's luaL_checklstring takes it)
  if (type(data) ~= "string" and type(data) ~= "number") or (host ~= nil and (type(host) ~= "string" or p == nil
      or p < 1 or p > 65535)) then
    sendto_error(data, host, port)
  end
  net.udp_send(self._u, data, host, p)
end

-- recvfrom() -> data, host, port
UDPSocket.recvfrom = async(function(self)
  local u = self._u
  while true do
    local data, host, port = net.udp_recv(u)
    if data then return data, host, port end
    await(net.udp_wait(u))
  end
end, "DatagramSocket.recvfrom")

function UDPSocket:close() net.udp_close(self._u) end
UDPSocket.__close = UDPSocket.close
function UDPSocket:is_closing() return net.udp_is_closing(self._u) end

UDPSocket.wait_closed = async(function(self)
  local f = net.udp_wait_closed(self._u)
  if f then await(f) end
end, "DatagramSocket.wait_closed")

local function addr_pair(fname, what, addr)
  if addr == nil then return nil end
  if type(addr) ~= "table" then error(fname .. ": " .. what .. " must be {host, port}, got " .. type(addr), 4) end
  return addr[1] or addr.host, check_port(fname, addr[2] or addr.port or 0)
end

-- open_udp{local_addr = {host, port}, remote_addr = {host, port}, reuse_port=,
-- allow_broadcast=, family=} -> a datagram socket
M.open_udp = async(function(opts)
  opts = check_opts("open_udp", opts)
  local lhost, lport = addr_pair("open_udp", "local_addr", opts.local_addr)
  local rhost, rport = addr_pair("open_udp", "remote_addr", opts.remote_addr)
  local family = opts.family
  local remote
  if rhost then
    remote = resolve("open_udp", rhost, rport, "dgram", false, family)[1]
    family = remote.family
  end
  local laddr
  if lhost then
    laddr = resolve("open_udp", lhost, lport, "dgram", true, family)[1]
  elseif remote == nil or (lport and lport ~= 0) then
    laddr = { address = family == "inet6" and "::" or "0.0.0.0", port = lport or 0 }
  end
  local u = net.udp_open(laddr and laddr.address, laddr and laddr.port, remote and remote.address,
    remote and remote.port, opts.reuse_port, opts.allow_broadcast)
  return setmetatable({ _u = u }, UDPSocket)
end, "open_udp")

-- a method called with '.' says so (the C ones, read, readline, write..., check themselves)
core._checked_methods(Reader, Reader, "StreamReader", "reader")
core._checked_methods(Writer, Writer, "StreamWriter", "writer")
core._checked_methods(Server, Server, "Server", "server")
core._checked_methods(UDPSocket, UDPSocket, "DatagramSocket", "sock")

return M, { make_streams = make_streams, lookup = lookup }
