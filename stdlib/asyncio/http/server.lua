-- http/server.lua — http.serve: one task per connection reads its requests and runs
-- the handler of each in turn (requests on a connection are answered in order), with
-- the hot path in C (async/net/http_server.c): requests parsed straight out of the
-- stream's buffer, a response's head and body written at once. One timer per server
-- enforces header_timeout and idle_timeout: connections only note when they started
-- waiting.
local core, M, H, http = ...
local arg_error = H.arg_error

local net = core.net
local iscoroutine = M.iscoroutine
local CancelledError, OSError = M.CancelledError, M.OSError
local ProtocolError = H.ProtocolError
local type, error, pairs, xpcall, pcall, tostring, setmetatable = type, error, pairs, xpcall, pcall, tostring, setmetatable
local lower = string.lower
local tointeger = math.tointeger

local http_conn, net_write, net_close = net.http_conn, net.write, net.close
local http_request, http_respond, http_headers = net.http_request, net.http_respond, net.http_headers
local wait_drain = net.wait_drain
local await = M.await
local context_get, context_set = core._context_get, core._context_set
local REASONS, http_date = H.REASONS, H.date

local MAX_URL = 8192

-- What a connection is doing, for the timer: a new one or one between requests waits
-- for a request (idle_timeout once one was answered, header_timeout before), one
-- receiving a head has header_timeout to finish it.
local NEW, IDLE, HEAD, BUSY, DONE = 1, 2, 3, 4, 5

-- The status for a request the parser refused, by the parser's error name.
local REFUSED = { HEADER_TOO_LARGE = 431, URL_TOO_LONG = 414, INVALID_TRANSFER_ENCODING = 501 }

-- The statuses a handler may return: a look-up tells a valid one (an integer, or a float
-- with an integer value, from 100 to 999) from anything else without a call.
local STATUSES = {}
for status = 100, 999 do STATUSES[status] = true end

-- A response the server makes itself (an error, a timeout), closing the connection.
local function refuse(c, status, detail)
  local body = (REASONS[status] or "Error") .. (detail and (": " .. detail) or "") .. "\n"
  pcall(net_write, c.h, "HTTP/1.1 " .. status .. " " .. (REASONS[status] or "Unknown")
    .. "\r\ncontent-type: text/plain\r\ncontent-length: " .. #body
    .. "\r\ndate: " .. http_date() .. "\r\nconnection: close\r\n\r\n" .. body)
  c.state = DONE
  net_close(c.h)
end

-- The first bytes of a request give its head header_timeout to arrive whole.
local function head_begun(c)
  if c.state <= IDLE then
    c.state = HEAD
    c.since = c.server._now
  end
end

-- The connection's next parser event but a head ("body", "done", "error" or "eof"; see
-- net.http_request, which waits for bytes as needed).
local function conn_next(c)
  return http_request(c.conn, c, nil)
end

-- ---- Request -------------------------------------------------------------------
-- A Request holds what the handler reads; the state of reading its body is its
-- connection's (c.req is the request being answered, c.keep, c.done, c.expect,
-- c.received), as a connection answers one request at a time.

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
-- made when first read: most handlers never read them
function request_fields.headers(req)
  local headers = http_headers(req._head)
  rawset(req, "headers", headers)
  return headers
end
function request_fields.peer(req)
  local host, port = net.peername(req._conn.h)
  return host and { host = host, port = port } or nil
end

-- The next piece of the request's body, or nil at its end (or once it was answered).
local function body_next(req)
  local c = req._conn
  if c.done or c.req ~= req then return nil end
  if c.expect then
    c.expect = false
    net_write(c.h, "HTTP/1.1 100 Continue\r\n\r\n")
  end
  local ev, data, reason = conn_next(c)
  if ev == "body" then
    local n = c.received + #data
    c.received = n
    if n > c.server._max_body then
      c.failed = 413
      error(ProtocolError("the request body is larger than max_body_size (" .. c.server._max_body .. " bytes)"), 0)
    end
    return data
  elseif ev == "done" then
    c.done = true
    c.keep = c.keep and data -- trailers may say connection: close
    return nil
  end
  c.failed = ev == "error" and (REFUSED[data] or 400) or "eof"
  error(ProtocolError(ev == "error" and ("malformed request body: " .. tostring(reason))
    or "the connection ended before the request body did"), 0)
end

-- req:read(), req:chunks(), req:json()
H.body_methods(Request, "http.Request", body_next)

-- ---- responses ---------------------------------------------------------------------

local RESPONSE = "http.serve: the handler's response"

local function traceback(e)
  return { err = e, tb = type(e) == "table" and e.traceback or core._traceback(e, 2) }
end

local function report(req, what, failure)
  core._report("http.serve: " .. what .. " (" .. req.method .. " " .. req.target .. "):",
    failure.err, failure.tb)
end

local INTERNAL_HEADERS = { ["content-type"] = "text/plain" }
local INTERNAL_BODY = "Internal Server Error\n"

-- What a response with a body other than a string, a function or nil sends: a table
-- as JSON, a number as text; nil and the failure for anything else.
local function body_of(body)
  local btype = type(body)
  if btype == "table" then
    local ok, text = pcall(H.json().encode, body)
    if ok then return text, true end
    return nil, { err = RESPONSE .. ": the body cannot be sent as JSON (" .. tostring(text) .. ")" }
  end
  if btype == "number" then return tostring(body) end
  return nil, { err = "http.serve: the handler returned a body of type " .. btype
    .. " (expected a string, a table for JSON, or an iterator function)" }
end

-- Sends the rest of a response whose head http_respond wrote; returns whether the
-- connection can carry another request.
local function respond_rest(c, req, body, keep, mode, drain)
  local h = c.h
  if drain then await(wait_drain(h)) end
  if mode then
    -- the head is out: a failing iterator can only cut the connection, so the client
    -- sees the response was incomplete
    local ok, err = xpcall(H.write_stream, traceback, "http.serve", h, body, mode == "chunked")
    if not ok then
      if not OSError:is(err.err) then report(req, "sending the response failed", err) end
      return false
    end
  end
  return keep
end

-- Sends a response (the handler's, or the server's 500); returns whether the
-- connection can carry another request, or nil and the failure for a response that
-- cannot be sent (nothing of it was written); then whether the task has a ContextVar
-- context.
local function respond(c, req, status, headers, body, keep)
  local keep2, mode, drain, context = http_respond(c.conn, status, headers, body, req.version,
    req.method == "HEAD", keep, false)
  if keep2 == nil and mode == "body" then
    local json
    body, json = body_of(body)
    if body == nil then return nil, json, true end
    keep2, mode, drain, context = http_respond(c.conn, status, headers, body, req.version,
      req.method == "HEAD", keep, json)
  end
  if keep2 == nil then
    -- the message of the header that cannot be sent, as the client's requests word it
    local _, err = pcall(H.add_headers, RESPONSE, {}, 0, headers)
    return nil, { err = err }, true
  end
  if mode or drain then keep2 = respond_rest(c, req, body, keep2, mode, drain) end
  return keep2, nil, context
end

local EMPTY_CONTEXT = {}
local answer

-- Answers a request the handler failed on (c.failure: err, tb) or returned no valid
-- status for: 500, or nothing when the connection must end; returns whether to go on.
local function answer_failure(c, req, status)
  local failure = c.failure
  if failure then
    c.failure = false
    if c.failed then
      if c.failed ~= "eof" then refuse(c, c.failed, tostring(failure.err.message or failure.err)) end
      return false
    end
    -- the connection's task is cancelled (or the handler was): the connection ends
    if CancelledError:is(failure.err) then error(failure.err, 0) end
    report(req, "the handler failed", failure)
  else
    report(req, "the handler returned no valid status",
      { err = "got " .. tostring(status) .. " (expected an integer from 100 to 999)" })
  end
  return answer(c, req, 500, INTERNAL_HEADERS, INTERNAL_BODY)
end

-- What follows a response sent (sent: whether the connection can carry another
-- request): a ContextVar the handler set is undone (context: the task has a context), as
-- if it had run in a task of its own; what the handler left of the body is read and
-- dropped, to reach the next request. Returns whether to go on.
local function answered(c, req, sent, context)
  if (context or c.context) and context_get() ~= c.context then context_set(c.context or EMPTY_CONTEXT) end
  if not sent then return false end
  if not c.done then
    while body_next(req) do end
  end
  c.req = false
  local server = c.server
  if not c.keep or server._closing then return false end
  c.state = IDLE
  c.since = server._now
  return true
end

-- Whether the connection may carry another request after this one.
local function keeps(c)
  local server = c.server
  local max = server._max_requests
  -- a client told to wait for 100 Continue that never came may or may not send its
  -- body now: only closing the connection is safe
  return c.keep and not server._closing and not c.failed and not (max and c.count >= max)
    and not (c.expect and not c.done)
end

-- Sends the response to the request being answered (c.req); returns whether to go on
-- with the next request.
function answer(c, req, status, headers, body)
  if not STATUSES[status] then return answer_failure(c, req, status) end
  local keep = keeps(c)
  local sent, failure, context = respond(c, req, status, headers, body, keep)
  if sent == nil then
    report(req, "the handler's response cannot be sent", failure)
    sent = respond(c, req, 500, INTERNAL_HEADERS, INTERNAL_BODY, keep)
  end
  return answered(c, req, sent, context)
end

-- Reads requests and answers them, until the connection ends. The handler runs here,
-- in the connection's task, with no pcall of its own: serve_connection's catches what
-- it raises (c.in_handler tells it was the handler's) and carries on.
local function serve_requests(c)
  local server, conn, handler = c.server, c.conn, c.server._handler
  local max = server._max_requests
  while true do
    local ev, method, target, path, query, version, head, keep, length, chunked, done, te, expect =
      http_request(conn, c, head_begun)
    if ev ~= "head" then
      if ev == "error" and c.state ~= DONE then
        -- method, target: the parser's error name and reason
        refuse(c, REFUSED[method] or 400, target)
      end
      return
    end
    local count = c.count + 1
    c.state, c.count = BUSY, count
    local req = setmetatable({ method = method, target = target, path = path, query = query,
      version = version, _head = head, _conn = c }, Request)
    c.req, c.keep, c.done = req, keep, done
    if te and not H.only_chunked(te) then return refuse(c, 501, "transfer coding " .. te) end
    if not done then
      c.expect, c.received = false, 0
      if length and length > server._max_body then return refuse(c, 413) end
      if expect and (chunked or (length and length > 0)) then
        if lower(expect) ~= "100-continue" then return refuse(c, 417) end
        c.expect = version == "1.1"
      end
    end
    c.in_handler = true
    local status, rheaders, body = handler(req)
    if not STATUSES[status] and iscoroutine(status) then status, rheaders, body = await(status) end
    c.in_handler = false
    if done and STATUSES[status] then
      -- the common case (a request without body, a valid status) without answer's steps
      local sent, mode, drain, context = http_respond(conn, status, rheaders, body, version,
        method == "HEAD", keep and not server._closing and not c.failed and not (max and count >= max), false)
      if sent == nil then -- nothing written: a body to convert, or a response refused
        if not answer(c, req, status, rheaders, body) then return end
      elseif mode or drain or context or c.context then
        if mode or drain then sent = respond_rest(c, req, body, sent, mode, drain) end
        if not answered(c, req, sent, context) then return end
      elseif not sent or server._closing then
        return
      else
        c.req = false
        c.state = IDLE
        c.since = server._now
      end
    elseif not answer(c, req, status, rheaders, body) then
      return
    end
  end
end

-- A connection's task.
local function serve_connection(server, reader)
  local h = reader._h
  local c = { server = server, h = h, conn = http_conn(h, server._max_head, MAX_URL),
    state = NEW, since = server._now, count = 0, context = context_get(),
    req = false, keep = false, done = false, expect = false, received = 0, failed = false,
    in_handler = false, failure = false }
  server._conns[c] = true
  while true do
    local ok, failure = xpcall(serve_requests, traceback, c)
    if ok then break end
    if c.in_handler then -- the handler failed: answer, then go on with the next request
      c.in_handler = false
      c.failure = failure
      ok, failure = xpcall(answer_failure, traceback, c, c.req)
      if ok and failure then goto continue end
      if ok then break end
    end
    if not OSError:is(failure.err) and not CancelledError:is(failure.err) then
      core._report("http.serve: a connection failed:", failure.err, failure.tb)
    end
    break
    ::continue::
  end
  server._conns[c] = nil
  c.state = DONE
  net_close(h)
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
  if not (v > 0) then arg_error(fname .. ": option " .. key .. " must be positive, got " .. tostring(v)) end
  return v
end

-- serve(handler, host, port, opts) -> Server
http.serve = M.async(function(handler, host, port, opts)
  if type(handler) ~= "function" then arg_error("http.serve: the handler must be a function, got " .. type(handler)) end
  opts = H.check_options("http.serve", opts, OPTIONS)
  local header_timeout = positive("http.serve", opts, "header_timeout", 10)
  local idle_timeout = positive("http.serve", opts, "idle_timeout", 60)
  local server = setmetatable({
    _handler = handler, _conns = {}, _now = M.get_running_loop():time(),
    _max_head = tointeger(positive("http.serve", opts, "max_header_size", 16384)) or arg_error("http.serve: max_header_size must be an integer"),
    _max_body = positive("http.serve", opts, "max_body_size", 16 * 1024 * 1024),
    _header_timeout = header_timeout, _idle_timeout = idle_timeout,
    _max_requests = opts.max_requests and positive("http.serve", opts, "max_requests") or false,
    _closing = false,
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

-- a method called with '.' says so (none of them is on a request's path)
core._checked_methods(Server, Server, "http.Server", "server")
