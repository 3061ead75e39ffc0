-- http/server.lua — http.serve: one task per connection reads requests with the parser
-- of async/http.c and runs the handler of each in a task of its own, answering in
-- order. One timer per server enforces header_timeout and idle_timeout: connections
-- only note when they started waiting.
local core, M, H, http = ...

local net = core.net
local await, create_task, iscoroutine = M.await, M.create_task, M.iscoroutine
local CancelledError, OSError = M.CancelledError, M.OSError
local ProtocolError = H.ProtocolError
local type, error, pairs, xpcall, pcall, tostring, setmetatable = type, error, pairs, xpcall, pcall, tostring, setmetatable
local concat, find, sub, lower = table.concat, string.find, string.sub, string.lower
local tointeger = math.tointeger

local http_parser, net_write, net_close = net.http_parser, net.write, net.close
local next_event, write = H.next_event, H.write
local REASONS, http_date = H.REASONS, H.date

local MAX_URL = 8192

-- What a connection is doing, for the timer: a new one or one between requests waits
-- for a request (idle_timeout once one was answered, header_timeout before), one
-- receiving a head has header_timeout to finish it.
local NEW, IDLE, HEAD, BUSY, DONE = 1, 2, 3, 4, 5

-- The status for a request the parser refused, by the parser's error name.
local REFUSED = { HEADER_TOO_LARGE = 431, URL_TOO_LONG = 414, INVALID_TRANSFER_ENCODING = 501 }

local STATUS_LINES = setmetatable({}, { __index = function(t, status)
  local line = "HTTP/1.1 " .. status .. " " .. (REASONS[status] or "Unknown") .. "\r\n"
  t[status] = line
  return line
end })

-- A response the server makes itself (an error, a timeout), closing the connection.
local function refuse(c, status, detail)
  local body = (REASONS[status] or "Error") .. (detail and (": " .. detail) or "") .. "\n"
  pcall(net_write, c.h, STATUS_LINES[status] .. "content-type: text/plain\r\ncontent-length: " .. #body
    .. "\r\ndate: " .. http_date() .. "\r\nconnection: close\r\n\r\n" .. body)
  c.state = DONE
  net_close(c.h)
end

-- The first bytes of a request: its head now has header_timeout to arrive whole.
local function head_begun(c)
  if c.state <= IDLE then
    c.state = HEAD
    c.since = c.server._now
  end
end

local function conn_next(c) return next_event(c, head_begun) end

-- ---- Request -------------------------------------------------------------------

local Request = {}
Request.__name = "http.Request"
local request_fields = {}

Request.__index = function(req, k)
  local m = Request[k]
  if m ~= nil then return m end
  local f = request_fields[k]
  if f then return f(req) end
  return nil
end

function Request:__tostring() return "<http.Request " .. self.method .. " " .. self.target .. ">" end

function Request:peername() return net.peername(self._conn.h) end
function request_fields.peer(req)
  local host, port = net.peername(req._conn.h)
  return host and { host = host, port = port } or nil
end

-- The next piece of the request's body, or nil at its end.
local function body_next(req)
  if req._done then return nil end
  local c = req._conn
  if req._expect then
    req._expect = false
    net_write(c.h, "HTTP/1.1 100 Continue\r\n\r\n")
  end
  local ev, data, reason = conn_next(c)
  if ev == "body" then
    local n = req._received + #data
    req._received = n
    if n > c.server._max_body then
      c.failed = 413
      error(ProtocolError("the request body is larger than max_body_size (" .. c.server._max_body .. " bytes)"), 0)
    end
    return data
  elseif ev == "done" then
    req._done = true
    req._keep = req._keep and data -- trailers may say connection: close
    return nil
  end
  c.failed = ev == "error" and (REFUSED[data] or 400) or "eof"
  error(ProtocolError(ev == "error" and ("malformed request body: " .. tostring(reason))
    or "the connection ended before the request body did"), 0)
end

-- req:read(), req:chunks(), req:json()
H.body_methods(Request, "http.Request", body_next)

-- ---- responses ---------------------------------------------------------------------

-- Sends what the handler returned; returns whether the connection can carry another
-- request.
local function respond(c, req, status, headers, body)
  local h = c.h
  local parts, n = { STATUS_LINES[status] }, 1
  local given
  n, given = H.add_headers("http.serve: the handler's response", parts, n, headers)
  local btype = type(body)
  if btype == "table" then
    body = H.json().encode(body)
    btype = "string"
    if not given["content-type"] then
      n = n + 1
      parts[n] = "content-type: application/json\r\n"
    end
  elseif btype == "number" then
    body, btype = tostring(body), "string"
  elseif body ~= nil and btype ~= "string" and btype ~= "function" then
    error("http.serve: the handler returned a body of type " .. btype
      .. " (expected a string, a table for JSON, or an iterator function)", 0)
  end
  local server = c.server
  local keep = req._keep and not server._closing and not c.failed
    and not (server._max_requests and c.count >= server._max_requests)
  -- a client told to wait for 100 Continue that never came may or may not send its
  -- body now: only closing the connection is safe
  if req._expect and not req._done then keep = false end
  local bodiless = status < 200 or status == 204 or status == 304
  local streamed = btype == "function" and not bodiless
  local chunked = false
  if streamed and not given["content-length"] then
    if req.version == "1.1" and not given["transfer-encoding"] then
      chunked = true
      n = n + 1
      parts[n] = "transfer-encoding: chunked\r\n"
    elseif not given["transfer-encoding"] then
      keep = false -- an HTTP/1.0 client reads such a body to the end of the connection
    end
  elseif not bodiless and not given["content-length"] and not streamed then
    n = n + 1
    parts[n] = "content-length: " .. (body and #body or 0) .. "\r\n"
  end
  if not given.date then
    n = n + 1
    parts[n] = "date: " .. http_date() .. "\r\n"
  end
  if not keep then
    n = n + 1
    parts[n] = "connection: close\r\n"
  elseif req.version == "1.0" then
    n = n + 1
    parts[n] = "connection: keep-alive\r\n"
  end
  n = n + 1
  parts[n] = "\r\n"
  local head_only = req.method == "HEAD" or bodiless
  if btype == "string" and not head_only then
    n = n + 1
    parts[n] = body
  end
  write(h, concat(parts, "", 1, n))
  if streamed and not head_only then H.write_stream("http.serve", h, body, chunked) end
  return keep
end

-- The body of a request's task: the handler's results, or false and the error.
local function traceback(e)
  return { err = e, tb = type(e) == "table" and e.traceback or debug.traceback(nil, 2) }
end

local function call_handler(handler, req)
  local status, headers, body = handler(req)
  if iscoroutine(status) then status, headers, body = await(status) end
  return status, headers, body
end

local function run_handler(handler, req)
  return xpcall(call_handler, traceback, handler, req)
end

local function report(req, what, failure)
  core._report("http.serve: " .. what .. " (" .. req.method .. " " .. req.target .. "):",
    failure.err, failure.tb)
end

-- Answers one request; returns whether to go on with the next one.
local function answer(c, req)
  local server = c.server
  local ok, status, headers, body = await(create_task(run_handler, server._handler, req))
  if not ok then
    local failure = status
    if c.failed then
      if c.failed ~= "eof" then refuse(c, c.failed, tostring(failure.err.message or failure.err)) end
      return false
    end
    if CancelledError:is(failure.err) and server._closing then return false end
    report(req, "the handler failed", failure)
    status, headers, body = 500, { ["content-type"] = "text/plain" }, "Internal Server Error\n"
  elseif tointeger(status) == nil or status < 100 or status > 999 then
    report(req, "the handler returned no valid status",
      { err = "got " .. tostring(status) .. " (expected an integer from 100 to 999)" })
    status, headers, body = 500, { ["content-type"] = "text/plain" }, "Internal Server Error\n"
  end
  local sent, keep = xpcall(respond, traceback, c, req, status, headers, body)
  if not sent then
    -- a failure before the head went out still gets its 500; after, the connection
    -- is cut so the client sees the response was incomplete
    if not c.failed and OSError:is(keep.err) then return false end
    report(req, "sending the response failed", keep)
    return false
  end
  if not keep then return false end
  -- what the handler left of the body is read and dropped, to reach the next request
  while body_next(req) do end
  return req._keep
end

local function serve_requests(c)
  local server = c.server
  while true do
    local ev, method, target, version, headers, keep, length, chunked = conn_next(c)
    if ev ~= "head" then
      if ev == "error" and c.state ~= DONE then
        -- method, target: the parser's error name and reason
        refuse(c, REFUSED[method] or 400, target)
      end
      return
    end
    c.state = BUSY
    c.count = c.count + 1
    local req = setmetatable({ method = method, target = target, version = version, headers = headers,
      _conn = c, _keep = keep, _received = 0 }, Request)
    local q = find(target, "?", 1, true)
    if q then
      req.path, req.query = sub(target, 1, q - 1), sub(target, q + 1)
    else
      req.path = target
    end
    local te = headers["transfer-encoding"]
    if te and not H.only_chunked(te) then return refuse(c, 501, "transfer coding " .. te) end
    if length and length > server._max_body then return refuse(c, 413) end
    local expect = headers.expect
    if expect and (chunked or (length and length > 0)) then
      if lower(expect) ~= "100-continue" then return refuse(c, 417) end
      req._expect = version == "1.1"
    end
    if not answer(c, req) then return end
    if server._closing then return end
    c.state = IDLE
    c.since = server._now
  end
end

-- A connection's task.
local function serve_connection(server, reader)
  local h = reader._h
  local c = { server = server, h = h, p = http_parser("request", server._max_head, MAX_URL),
    state = NEW, since = server._now, count = 0 }
  server._conns[c] = true
  local ok, err = pcall(serve_requests, c)
  server._conns[c] = nil
  c.state = DONE
  net_close(h)
  if not ok and not OSError:is(err) and not CancelledError:is(err) then
    core._report("http.serve: a connection failed:", err)
  end
end

-- ---- Server --------------------------------------------------------------------------

local Server = {}
Server.__index = Server
Server.__name = "http.Server"

function Server:__tostring()
  local host, port = self:sockname()
  return "<http.Server " .. tostring(host) .. " port " .. tostring(port) .. (self._closing and " closed" or "") .. ">"
end

function Server:sockname() return self._server:sockname() end

-- The timer: connections past their timeout are answered 408 (a head begun or never
-- sent) or closed (idle between requests).
local function sweep(server)
  local now = M.get_running_loop():time()
  server._now = now
  for c in pairs(server._conns) do
    local state = c.state
    if (state == HEAD or state == NEW) and now - c.since >= server._header_timeout then
      refuse(c, 408)
    elseif state == IDLE and now - c.since >= server._idle_timeout then
      c.state = DONE
      net_close(c.h)
    end
  end
end

-- close(): stops accepting; connections waiting for a request are closed, requests in
-- flight finish (their responses say connection: close).
function Server:close()
  if self._closing then return end
  self._closing = true
  self._server:close()
  self._timer:cancel()
  for c in pairs(self._conns) do
    if c.state == NEW or c.state == IDLE then
      c.state = DONE
      net_close(c.h)
    end
  end
end

Server.wait_closed = M.async(function(self)
  await(self._server:wait_closed())
end, "http.Server.wait_closed")

Server.serve_forever = M.async(function(self)
  local ok, err = pcall(await, self._server:serve_forever())
  self:close()
  if not ok then error(err, 0) end
end, "http.Server.serve_forever")

function Server:__close()
  self:close()
  await(self:wait_closed())
end

local OPTIONS = {
  ssl = "any", reuse_port = "boolean", backlog = "number", max_header_size = "number",
  max_body_size = "number", header_timeout = "number", idle_timeout = "number",
  max_requests = "number", family = "string", ssl_handshake_timeout = "number",
}

local function positive(fname, opts, key, default)
  local v = opts[key]
  if v == nil then return default end
  if not (v > 0) then error(fname .. ": option " .. key .. " must be positive, got " .. tostring(v), 0) end
  return v
end

-- serve(handler, host, port, opts) -> Server
http.serve = M.async(function(handler, host, port, opts)
  if type(handler) ~= "function" then error("http.serve: the handler must be a function, got " .. type(handler), 2) end
  opts = H.check_options("http.serve", opts, OPTIONS)
  local header_timeout = positive("http.serve", opts, "header_timeout", 10)
  local idle_timeout = positive("http.serve", opts, "idle_timeout", 60)
  local server = setmetatable({
    _handler = handler, _conns = {}, _now = M.get_running_loop():time(),
    _max_head = tointeger(positive("http.serve", opts, "max_header_size", 16384)) or error("http.serve: max_header_size must be an integer", 0),
    _max_body = positive("http.serve", opts, "max_body_size", 16 * 1024 * 1024),
    _header_timeout = header_timeout, _idle_timeout = idle_timeout,
    _max_requests = opts.max_requests and positive("http.serve", opts, "max_requests"),
  }, Server)
  server._server = await(M.start_server(function(reader) serve_connection(server, reader) end,
    host, port, { ssl = opts.ssl, reuse_port = opts.reuse_port, backlog = opts.backlog, nodelay = true,
      family = opts.family, ssl_handshake_timeout = opts.ssl_handshake_timeout }))
  -- timeouts are kept to about a fifth of the shorter one
  local tick = math.min(math.max(math.min(header_timeout, idle_timeout) / 5, 0.01), 1)
  local loop = M.get_running_loop()
  local function rearm()
    sweep(server)
    server._timer = loop:call_later(tick, rearm)
  end
  server._timer = loop:call_later(tick, rearm)
  return server
end, "http.serve")
