-- http/client.lua — http.request and http.Client: a pool of keep-alive connections per
-- scheme, host and port; requests written by hand, responses read with the parser of
-- async/http.c, bodies undone with its inflater. A pooled connection the server has
-- closed meanwhile is found out when a request on it fails before any response byte:
-- an idempotent request is then sent once more on a new connection.
local core, M, H, http = ...

local net = core.net
local await, Future = M.await, M.Future
local OSError, TimeoutError = M.OSError, M.TimeoutError
local ProtocolError = H.ProtocolError
local arg_error = H.arg_error
local type, error, pcall, tostring, setmetatable, pairs, ipairs = type, error, pcall, tostring, setmetatable, pairs, ipairs
local concat, format, find, sub, lower, match = table.concat, string.format, string.find, string.sub, string.lower, string.match
local tointeger = math.tointeger

local http_parser, http_skip_body, http_idle = net.http_parser, net.http_skip_body, net.http_idle
local net_close, at_eof = net.close, net.at_eof
local write = H.write
local http_response = net.http_response

local MAX_HEAD = 64 * 1024 -- a response head larger than this is a ProtocolError
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }
local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local DEFAULT_PORTS = { http = 80, https = 443 }

-- ---- URLs ----------------------------------------------------------------------------

-- scheme, host, port, target (path and query), the Host header's value
local function parse_url_uncached(fname, url)
  if type(url) ~= "string" then arg_error(fname .. ": url must be a string, got " .. type(url)) end
  local scheme, rest = match(url, "^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and lower(scheme)
  if not DEFAULT_PORTS[scheme] then
    arg_error(fname .. ": unsupported URL '" .. url .. "' (expected http:// or https://)")
  end
  local authority, target = match(rest, "^([^/?#]*)(.*)$")
  target = match(target, "^[^#]*")
  if target == "" or sub(target, 1, 1) == "?" then target = "/" .. target end
  if find(authority, "@", 1, true) then arg_error(fname .. ": credentials in URLs are not supported ('" .. url .. "')") end
  local host, port = match(authority, "^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = match(authority, "^([^:]+):?(%d*)$") end
  if not host then arg_error(fname .. ": invalid URL '" .. url .. "'") end
  if find(target, "[%s%c]") then arg_error(fname .. ": invalid URL '" .. url .. "' (spaces or control characters)") end
  port = tointeger(tonumber(port)) or DEFAULT_PORTS[scheme]
  return scheme, lower(host), port, target, authority
end

-- A program asks for the same URLs again and again: what parse_url found is kept per URL
-- string (the patterns cost more than the rest of a request's Lua), for at most
-- URL_CACHE_SIZE URLs at a time.
local URL_CACHE_SIZE = 256
local url_cache, url_cached = {}, 0

-- A URL's parts: {scheme, host, port, target, authority, key (the pool's)}; raises for a
-- URL that is not valid.
local function url_parts(fname, url)
  local u = url_cache[url]
  if u then return u end
  local scheme, host, port, target, authority = parse_url_uncached(fname, url)
  u = { scheme, host, port, target, authority, scheme .. "://" .. host .. ":" .. port }
  if url_cached >= URL_CACHE_SIZE then url_cache, url_cached = {}, 0 end
  url_cache[url], url_cached = u, url_cached + 1
  return u
end

local function parse_url(fname, url)
  local u = url_parts(fname, url)
  return u[1], u[2], u[3], u[4], u[5]
end

-- The target of a Location header, relative to url.
local function resolve_url(url, location)
  if match(location, "^%a[%w+.-]*://") then return location end
  local scheme, authority, path = match(url, "^(%a[%w+.-]*)://([^/?#]*)([^?#]*)")
  if sub(location, 1, 2) == "//" then return scheme .. ":" .. location end
  if sub(location, 1, 1) == "/" then return scheme .. "://" .. authority .. location end
  local dir = match(path, "^(.*/)") or "/"
  return scheme .. "://" .. authority .. dir .. location
end

-- ---- connections ------------------------------------------------------------------

local function response_begun(conn) conn.got = true end

-- ---- Client ----------------------------------------------------------------------------

local Client = {}
Client.__index = Client
Client.__name = "http.Client"

function Client:__tostring() return "<http.Client" .. (self._closed and " closed" or "") .. ">" end

-- The loop's clock (loop:time(), which reads no state of the loop).
local clock
local function now()
  if clock == nil then clock = M.get_running_loop().time end
  return clock()
end

local function discard(pool, conn)
  pool.count = pool.count - 1
  net_close(conn.h)
  local w = pool.waiters
  if w[1] then
    local f = table.remove(w, 1)
    if not f:done() then f:set_result() end
  end
end

local function pool_of(client, key)
  local pool = client._pools[key]
  if pool == nil then
    pool = { idle = {}, count = 0, waiters = {} }
    client._pools[key] = pool
  end
  return pool
end

-- A connection to key's server: an idle one (reused = true) or a new one.
local function acquire(client, key, scheme, host, port, opts, fresh)
  local pool = pool_of(client, key)
  while true do
    local idle = pool.idle
    while not fresh and idle[1] do
      local conn = idle[#idle]
      idle[#idle] = nil
      if now() - conn.since < client._idle_timeout and not at_eof(conn.h) then
        http_idle(conn.h, false)
        return conn, true
      end
      discard(pool, conn)
    end
    if pool.count < client._max_per_host then
      pool.count = pool.count + 1
      local ssl = scheme == "https" and (opts.ssl or client._ssl or true) or nil
      local ok, reader = pcall(function()
        local aw = M.open_connection(host, port, { ssl = ssl, nodelay = true })
        local ct = opts.connect_timeout or client._connect_timeout
        if ct then return await(M.wait_for(aw, ct)) end
        return await(aw)
      end)
      if not ok then
        pool.count = pool.count - 1
        local w = pool.waiters
        if w[1] then table.remove(w, 1):set_result() end
        error(reader, 0)
      end
      -- every field a request reads is present (an absent one costs a metatable look-up)
      return { h = reader._h, p = http_parser("response", MAX_HEAD, MAX_HEAD), pool = pool, key = key,
        got = false, released = false, body_unsent = false, head_only = false, since = 0, expect_scope = false }, false
    end
    local f = Future()
    pool.waiters[#pool.waiters + 1] = f
    local ok, err = pcall(await, f)
    if not ok then
      for i, w in ipairs(pool.waiters) do
        if w == f then table.remove(pool.waiters, i) break end
      end
      error(err, 0)
    end
    fresh = false
  end
end

-- Gives a connection back: to the idle list when it can carry another request.
local function release(client, conn, reusable)
  local pool = conn.pool
  if conn.released then return end
  conn.released = true
  if not reusable or client._closed or conn.body_unsent then return discard(pool, conn) end
  conn.released = false
  conn.since = now()
  conn.got = false
  http_idle(conn.h, true)
  pool.idle[#pool.idle + 1] = conn
  local w = pool.waiters
  if w[1] then table.remove(w, 1):set_result() end
end

-- ---- Response ------------------------------------------------------------------------

local Response = {}
Response.__index = Response
Response.__name = "http.Response"

function Response:__tostring() return "<http.Response " .. self.status .. " " .. self.url .. ">" end

local body_in_time, body_next_in_task
local current_task = M.current_task

-- The next piece of the body (decoded), or nil at its end; within the request's deadline
-- (timeout) if it has one.
-- A piece of a compressed body, decompressed.
local function inflated(res, f, data)
  local out, err, too_large = net.inflate(f, data)
  if not out then
    res:close()
    if too_large then
      error(ProtocolError(format("the response body decompresses to more than %.0f bytes "
        .. "(max_decompressed_size; %s %s)", res._max_decompressed, res.headers["content-encoding"], res.url)), 0)
    end
    error(ProtocolError("the response body could not be decompressed (" .. tostring(err) .. ")"), 0)
  end
  return out
end

-- The body's end: a compressed one must have ended too.
local function body_end(res)
  res._done = true
  if res._inflater and not net.inflate_ended(res._inflater) then
    error(ProtocolError("the compressed response body is cut short"), 0)
  end
  return nil
end

local function body_next(res, in_scope)
  if res._done then return nil end
  local body = res._body
  if body then -- the whole body came with the head: one piece (a string), then the end (true)
    res._body = false
    if body == true then return body_end(res) end
    local f = res._inflater
    if f then body = inflated(res, f, body) end
    if body == "" then return body_end(res) end
    res._body = true
    return body
  end
  if res._deadline and not in_scope then return body_in_time(res) end
  -- chunks() at the top level of a script: net.http_response waits only inside a task
  if current_task() == nil then return await(body_next_in_task(res, true)) end
  while true do
    if res._done then return nil end
    local conn = res._conn
    local ev, data, reason = http_response(conn.p, conn.h, conn, response_begun)
    if ev == "body" then
      local f = res._inflater
      if f then data = inflated(res, f, data) end
      if data ~= "" then return data end
    elseif ev == "done" then
      release(res._client, conn, data)
      return body_end(res)
    else
      res._done = true
      release(res._client, conn, false)
      error(ProtocolError(ev == "error" and ("malformed response body: " .. tostring(reason))
        or "the connection ended before the response body did"), 0)
    end
  end
end

body_next_in_task = M.async(body_next, "http.Response.chunks")

function body_in_time(res)
  local scope <close> = M.timeout_at(res._deadline)
  return body_next(res, true)
end

H.body_methods(Response, "http.Response", body_next)

-- close(): drops what is left of the body (and the connection with it, unless the whole
-- body came with the head: that connection went back to the pool already).
function Response:close()
  if not self._done then
    self._done = true
    self._body = false
    if self._conn then release(self._client, self._conn, false) end
  end
end
Response.__close = Response.close

-- ---- requests --------------------------------------------------------------------------

-- The caller's headers as lines, checked before anything is sent: lines, the set of
-- lower-case names given.
local function render_headers(headers)
  local parts = {}
  local n, given = H.add_headers("http.request", parts, 0, headers)
  return concat(parts, "", 1, n), given
end

-- A request's head up to its framing header: the request line, the caller's lines and
-- the headers added when not given. Without caller's headers it depends only on the URL,
-- the method and decompress, and is kept in the URL's parts (u.heads).
local function head_start(method, u, lines, given, decompress)
  return method .. " " .. u[4] .. " HTTP/1.1\r\n" .. lines
    .. (given.host and "" or "host: " .. u[5] .. "\r\n")
    .. (given["user-agent"] and "" or "user-agent: alua\r\n")
    .. ((decompress and not given["accept-encoding"]) and "accept-encoding: gzip, deflate\r\n" or "")
end

local NO_HEADERS = {}
local BODY_IN_HEAD_WRITE = 64 * 1024 -- a string body up to this size goes out with the head

-- The body after its head: a string, or an iterator's pieces (chunked unless the caller
-- gave a content-length).
local function send_body(h, body, given)
  if type(body) == "function" then
    H.write_stream("http.request", h, body, not given["content-length"])
  elseif body ~= nil then
    write(h, body)
  end
end

-- Writes the request in one write (the head, and a string body if not large); the body
-- is a string, an iterator (sent chunked unless a content-length is given) or nil.
-- hold: only the head (the body waits for the server's 100 Continue).
local function send(conn, method, u, lines, given, body, decompress, hold)
  local streamed = type(body) == "function"
  local framing
  if streamed then
    if not given["transfer-encoding"] and not given["content-length"] then framing = "transfer-encoding: chunked\r\n" end
  elseif (body or method == "POST" or method == "PUT" or method == "PATCH") and not given["content-length"] then
    framing = "content-length: " .. (body and #body or 0) .. "\r\n"
  end
  local head
  if given == NO_HEADERS then
    -- per URL and method: the head's start, and the whole head of a request without
    -- framing (two tables: no key built per request)
    local heads, wholes = u.heads, u.wholes
    if heads == nil then
      heads, wholes = {}, {}
      u.heads, u.wholes = heads, wholes
    end
    local key = decompress and method or method .. "/identity"
    local start = heads[key]
    if start == nil then
      start = head_start(method, u, lines, given, decompress)
      heads[key] = start
      wholes[key] = start .. "\r\n"
    end
    head = framing == nil and wholes[key] or start .. framing .. "\r\n"
  else
    head = head_start(method, u, lines, given, decompress) .. (framing or "") .. "\r\n"
  end
  local h = conn.h
  if not hold and body and not streamed and #body <= BODY_IN_HEAD_WRITE then
    write(h, head .. body)
  else
    write(h, head)
    if not hold then send_body(h, body, given) end
  end
end

local function malformed(reason, name)
  error(ProtocolError("malformed response from the server: " .. tostring(reason) .. " (" .. tostring(name) .. ")"), 0)
end

-- Reads the response head (skipping 1xx interim responses).
local function receive_head(conn, method)
  local head_only = method == "HEAD"
  if conn.head_only ~= head_only then
    http_skip_body(conn.p, head_only)
    conn.head_only = head_only
  end
  while true do
    local ev, status, reason, version, headers, keep, _, _, body, done = http_response(conn.p, conn.h, conn, response_begun)
    if ev == "head" then
      if status >= 200 or status == 101 then return status, reason, version, headers, keep, body, done end
      if not done then
        ev = http_response(conn.p, conn.h, conn, response_begun) -- the interim response's end
        if ev ~= "done" then return nil, ev, status end
      end
    elseif ev == "error" then
      malformed(reason, status)
    else
      return nil, ev
    end
  end
end

-- How long a request sent with Expect: 100-continue waits for the server's answer
-- before sending its body anyway (curl's default too): a server that ignores the
-- expectation (HTTP/1.0) costs that much, not a hang.
local EXPECT_WAIT = 1

-- After a head sent with Expect: 100-continue, the first answer that counts: 100 (send
-- the body) or a final status (do not); other 1xx are skipped.
local function continue_or_final(conn)
  while true do
    local ev, status, reason, version, headers, keep, _, _, body, done = http_response(conn.p, conn.h, conn, response_begun)
    if ev ~= "head" or status == 100 or status >= 200 or status == 101 then
      return ev, status, reason, version, headers, keep, body, done
    end
    if not done then
      ev = http_response(conn.p, conn.h, conn, response_begun) -- the interim response's end
      if ev ~= "done" then return ev end
    end
  end
end

local function continue_in_time(conn)
  local scope <close> = M.timeout(EXPECT_WAIT)
  conn.expect_scope = scope
  return continue_or_final(conn)
end

local function send_receive(conn, method, u, lines, given, body, decompress, expect)
  if not expect then
    send(conn, method, u, lines, given, body, decompress)
    return receive_head(conn, method)
  end
  send(conn, method, u, lines, given, body, decompress, true)
  local ok, ev, status, reason, version, headers, keep, got_body, done = pcall(continue_in_time, conn)
  local scope = conn.expect_scope
  conn.expect_scope = false
  if not ok then
    -- no answer within EXPECT_WAIT: the body goes anyway
    if not (TimeoutError:is(ev) and scope:expired()) then error(ev, 0) end
  elseif ev == "head" and status ~= 100 then
    -- a final answer (417, 413, 401...) before the body: the body is not sent, and the
    -- connection is not used again (the server may still expect the body on it)
    conn.body_unsent = true
    return status, reason, version, headers, keep, got_body, done
  elseif ev == "head" and not done then
    local name, why
    ev, name, why = http_response(conn.p, conn.h, conn, response_begun) -- the 100's end
    if ev == "error" then malformed(why, name) end
    if ev ~= "done" then return nil, ev end
  elseif ev == "head" then
    -- the 100 came whole
  elseif ev == "error" then
    malformed(reason, status)
  else
    return nil, ev
  end
  send_body(conn.h, body, given)
  return receive_head(conn, method)
end

-- One exchange on one connection; the response, or nil and whether it can be retried.
-- o: {ssl =, connect_timeout =, lines =, given =}; decompress: false, or the most bytes a
-- compressed body may decompress to.
local function exchange(client, url, method, o, body, decompress, fresh, deadline)
  local u = url_parts("http.request", url)
  local conn, reused = acquire(client, u[6], u[1], u[2], u[3], o, fresh)
  local ok, status, reason, version, headers, keep, got_body, done = pcall(send_receive, conn, method, u, o.lines,
    o.given, body, decompress, o.expect)
  if not ok or status == nil then
    release(client, conn, false)
    local err = status
    -- nothing came back on a connection that had served before: the server closed it
    -- while it was idle
    local stale = reused and not conn.got and (not ok and OSError:is(err) or ok)
    if stale then return nil, true end
    if ok then err = ProtocolError("the server closed the connection without a response") end
    error(err, 0)
  end
  local res = setmetatable({ status = status, reason = reason, version = version, headers = headers,
    url = url, _conn = conn, _client = client, _deadline = deadline, _done = false, _body = false,
    _inflater = false }, Response)
  local coding = headers["content-encoding"]
  if decompress and coding and method ~= "HEAD" then
    coding = lower(coding)
    if coding == "gzip" or coding == "x-gzip" or coding == "deflate" then
      res._inflater, res._max_decompressed = net.inflater(coding, decompress), decompress
    end
  end
  if done then
    -- the whole response came with its head (small, or body-less): its connection goes
    -- back to the pool at once, the body waits in the Response
    res._conn = false
    release(client, conn, keep)
    if got_body == "" then
      res._done = true
    else
      res._body = got_body
    end
  end
  return res
end

local OPTIONS = {
  headers = "table", body = "any", json = "any", timeout = "number", connect_timeout = "number",
  redirects = "number", decompress = "boolean", ssl = "any", client = "table", max_decompressed_size = "number",
}

-- Methods found valid (a token), so the pattern runs once per method.
local METHOD_OK = { GET = true, HEAD = true, POST = true, PUT = true, DELETE = true, PATCH = true, OPTIONS = true }
local methods_ok = 7

-- What a request without headers, ssl or connect_timeout options passes to exchange.
local PLAIN = { lines = "", given = NO_HEADERS, expect = false }
local NO_OPTIONS = {}

-- A copy of headers without the names (lower case) in drop.
local function without(headers, drop)
  local copy = {}
  for k, v in pairs(headers) do
    if not drop[lower(k)] then copy[k] = v end
  end
  return copy
end

-- What exchange needs of a request's options and headers: {ssl =, connect_timeout =,
-- lines =, given =, expect =} (expect: the body waits for 100 Continue).
local function exchange_options(opts, headers, body)
  local o = { ssl = opts.ssl, connect_timeout = opts.connect_timeout, expect = false }
  o.lines, o.given = render_headers(headers)
  if o.given.expect and body ~= nil and body ~= "" then
    for k, v in pairs(headers) do
      if lower(k) == "expect" and type(v) == "string" and lower(v) == "100-continue" then o.expect = true end
    end
  end
  return o
end

local NOT_AFTER_303 = { ["content-type"] = true, ["content-length"] = true, ["transfer-encoding"] = true }
local NOT_TO_ANOTHER_ORIGIN = { authorization = true, cookie = true }
local NO_EXPECT = { expect = true }

local function request(client, method, url, opts)
  if not METHOD_OK[method] then
    if type(method) ~= "string" or not match(method, "^[%u%d!#$%%&'*+.^_`|~-]+$") then
      arg_error("http.request: invalid method " .. format("%q", tostring(method)))
    end
    if methods_ok < 64 then
      METHOD_OK[method], methods_ok = true, methods_ok + 1
    end
  end
  -- (fields absent from a table cost a metatable look-up each: a request without
  -- options reads none of them)
  local body, headers, timeout, decompress, redirects
  if opts == nil then
    opts = NO_OPTIONS
    timeout, decompress, redirects = client._timeout, client._max_decompressed, 5
  else
    opts = H.check_options("http.request", opts, OPTIONS)
    client = opts.client or client
    body, headers = opts.body, opts.headers
    timeout = opts.timeout or client._timeout
    decompress = opts.decompress ~= false and (opts.max_decompressed_size or client._max_decompressed)
    redirects = opts.redirects or 5
  end
  if client._closed then arg_error("http.request: the client is closed") end
  if opts ~= NO_OPTIONS and opts.json ~= nil then
    if body ~= nil then arg_error("http.request: give body or json, not both") end
    body = H.json().encode(opts.json)
    local has_type = false
    for k in pairs(headers or {}) do has_type = has_type or lower(k) == "content-type" end
    if not has_type then
      local copy = { ["content-type"] = "application/json" }
      for k, v in pairs(headers or {}) do copy[k] = v end
      headers = copy
    end
  end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    arg_error("http.request: body must be a string or an iterator function, got " .. type(body))
  end
  local deadline = timeout and now() + timeout
  local scope <close> = deadline and M.timeout_at(deadline)
  if decompress and not (decompress > 0) then
    arg_error("http.request: max_decompressed_size must be positive, got " .. tostring(decompress))
  end
  local o = PLAIN
  if opts ~= NO_OPTIONS and (headers ~= nil or opts.ssl ~= nil or opts.connect_timeout ~= nil) then
    o = exchange_options(opts, headers, body)
  end
  while true do
    local res, retry = exchange(client, url, method, o, body, decompress, false, deadline)
    if res == nil and retry and IDEMPOTENT[method] and type(body) ~= "function" then
      res = exchange(client, url, method, o, body, decompress, true, deadline)
    end
    if res == nil then error(ProtocolError("the server closed the connection without a response"), 0) end
    if res.status == 417 and o.expect then
      -- the server refuses the expectation: the same request once more without it, its
      -- body (not sent yet, even an iterator's) right after the head
      res:close()
      headers = without(headers, NO_EXPECT)
      o = exchange_options(opts, headers, body)
      goto again
    end
    local location = res.headers.location
    if not (REDIRECTS[res.status] and location and redirects > 0) then return res end
    local status = res.status
    if (status == 307 or status == 308) and type(body) == "function" then
      return res -- a streamed body cannot be sent again
    end
    -- the redirect's own body is read (it is small) so its connection can be reused
    await(Response.read(res))
    local next_url = resolve_url(url, location)
    if status == 303 or ((status == 301 or status == 302) and method == "POST") then
      if method ~= "HEAD" then method = "GET" end
      body = nil
      if headers then headers = without(headers, NOT_AFTER_303) end
    end
    -- credentials are not sent to another origin
    local s1, h1, p1 = parse_url("http.request", url)
    local s2, h2, p2 = parse_url("http.request", next_url)
    if headers and (s1 ~= s2 or h1 ~= h2 or p1 ~= p2) then headers = without(headers, NOT_TO_ANOTHER_ORIGIN) end
    o = exchange_options(opts, headers, body)
    url = next_url
    redirects = redirects - 1
    ::again::
  end
end

Client.request = M.async(function(self, method, url, opts)
  return request(self, method, url, opts)
end, "http.Client.request")

local function shortcut(method, with_body)
  return M.async(function(self, url, a, b)
    local opts = a
    if with_body then
      opts = b or {}
      if type(opts) ~= "table" then arg_error("http.request: the options must be a table, got " .. type(opts)) end
      if a ~= nil then
        local copy = {}
        for k, v in pairs(opts) do copy[k] = v end
        copy.body = a
        opts = copy
      end
    end
    return request(self, method, url, opts)
  end, "http.Client." .. lower(method))
end

Client.get = shortcut("GET")
Client.head = shortcut("HEAD")
Client.delete = shortcut("DELETE")
Client.post = shortcut("POST", true)
Client.put = shortcut("PUT", true)

-- close(): closes the idle connections; those in use close when their response ends.
function Client:close()
  self._closed = true
  for _, pool in pairs(self._pools) do
    for i = #pool.idle, 1, -1 do
      local conn = pool.idle[i]
      pool.idle[i] = nil
      discard(pool, conn)
    end
  end
end
Client.__close = Client.close

local CLIENT_OPTIONS = { max_per_host = "number", idle_timeout = "number", timeout = "number",
  connect_timeout = "number", ssl = "any", max_decompressed_size = "number" }

-- A gzip or deflate body may decompress to at most this many bytes (a compression bomb
-- of a few hundred KiB would otherwise fill memory with gigabytes); math.huge: no limit.
local MAX_DECOMPRESSED = 64 * 1024 * 1024

function http.Client(opts)
  opts = H.check_options("http.Client", opts, CLIENT_OPTIONS)
  local max = opts.max_decompressed_size
  if max ~= nil and not (max > 0) then
    arg_error("http.Client: max_decompressed_size must be positive, got " .. tostring(max))
  end
  return setmetatable({ _pools = {}, _max_per_host = opts.max_per_host or 100, _closed = false,
    _idle_timeout = opts.idle_timeout or 60, _timeout = opts.timeout or false,
    _connect_timeout = opts.connect_timeout or false, _ssl = opts.ssl or false,
    _max_decompressed = opts.max_decompressed_size or MAX_DECOMPRESSED }, Client)
end

-- The module's functions share one Client.
local default
local function default_client()
  if default == nil then default = http.Client() end
  return default
end

http.request = M.async(function(method, url, opts)
  return request(default_client(), method, url, opts)
end, "http.request")

for _, name in ipairs { "get", "head", "delete", "post", "put" } do
  local method = Client[name]
  http[name] = M.async(function(...)
    return await(method(default_client(), ...))
  end, "http." .. name)
end

http.Response = Response
