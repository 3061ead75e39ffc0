-- http_server_spec.lua — asyncio.http's server against raw sockets (pipelining, limits,
-- timeouts, bad input) and real clients: curl, wrk, h2load --h1, python3.
local support = require "tests.support"
local http = require "asyncio.http"
local PIPE = asyncio.PIPE
local VALGRIND = (os.getenv("ALUA_RUNNER") or ""):find("valgrind") ~= nil

local function in_task(fn) return support.in_task(fn) end

local servers = {}
local function serve(handler, opts)
  local server = await(http.serve(handler, "127.0.0.1", 0, opts))
  servers[#servers + 1] = server
  return server, (select(2, server:sockname()))
end

after_each(function()
  for _, s in ipairs(servers) do
    s:close()
    await(asyncio.wait_for(s:wait_closed(), 10))
  end
  servers = {}
  assert.are.equal(0, support.cancel_leftovers(), "tasks left over by the spec")
end)

local function hello(req)
  return 200, { ["content-type"] = "text/plain" }, "hello " .. req.method .. " " .. req.target
end

-- Runs a program; returns its stdout, stderr and exit status.
local function run(...)
  local args = table.pack(...)
  args[args.n + 1] = { stdin = PIPE, stdout = PIPE, stderr = PIPE }
  local p = await(asyncio.create_subprocess_exec(table.unpack(args, 1, args.n + 1)))
  local out, err = await(asyncio.wait_for(p:communicate(), 60))
  return out, err, p.returncode
end

local function run_input(input, ...)
  local args = table.pack(...)
  args[args.n + 1] = { stdin = PIPE, stdout = PIPE, stderr = PIPE }
  local p = await(asyncio.create_subprocess_exec(table.unpack(args, 1, args.n + 1)))
  local out, err = await(asyncio.wait_for(p:communicate(input), 60))
  return out, err, p.returncode
end

-- Sends raw bytes on a new connection and reads until the server closes it (bounded).
local function exchange(port, data, opts)
  opts = opts or {}
  local r, w = await(asyncio.open_connection("127.0.0.1", port))
  if type(data) == "table" then
    for _, piece in ipairs(data) do
      w:write(piece)
      await(w:drain())
      await(asyncio.sleep(opts.pause or 0.01))
    end
  else
    w:write(data)
  end
  if opts.eof then w:write_eof() end
  local out = await(asyncio.wait_for(r:read(), opts.wait or 10))
  w:close()
  return out
end

-- The responses in a byte string: list of {status=, headers=, body=} (content-length
-- or chunked bodies).
local function parse_responses(data)
  local list, pos = {}, 1
  while pos <= #data do
    local head_end = data:find("\r\n\r\n", pos, true)
    if not head_end then break end
    local head = data:sub(pos, head_end - 1)
    local status = tonumber(head:match("^HTTP/1%.%d (%d+)"))
    local headers = {}
    for name, value in head:gmatch("\r\n([^:]+): ([^\r]*)") do headers[name:lower()] = value end
    pos = head_end + 4
    local body = ""
    if headers["content-length"] then
      local n = tonumber(headers["content-length"])
      body = data:sub(pos, pos + n - 1)
      pos = pos + n
    elseif headers["transfer-encoding"] == "chunked" then
      local parts = {}
      while true do
        local size_end = data:find("\r\n", pos, true)
        local size = tonumber(data:sub(pos, size_end - 1), 16)
        pos = size_end + 2
        if size == 0 then
          pos = pos + 2
          break
        end
        parts[#parts + 1] = data:sub(pos, pos + size - 1)
        pos = pos + size + 2
      end
      body = table.concat(parts)
    elseif status ~= 100 and status ~= 204 and status ~= 304 then
      body = data:sub(pos)
      pos = #data + 1
    end
    list[#list + 1] = { status = status, headers = headers, body = body, head = head }
  end
  return list
end

describe("http.serve", function()
  it("answers a request with Date, Content-Length and the handler's headers", in_task(function()
    local _, port = serve(hello)
    local list = parse_responses(exchange(port, "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert.are.equal(1, #list)
    local r = list[1]
    assert.are.equal(200, r.status)
    assert.are.equal("hello GET /a?b=1", r.body)
    assert.are.equal(tostring(#r.body), r.headers["content-length"])
    assert.are.equal("text/plain", r.headers["content-type"])
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers.date)
    assert.are.equal("close", r.headers.connection)
  end))

  it("gives the handler method, target, path, query, version, headers, peer and body", in_task(function()
    local seen
    local _, port = serve(function(req)
      seen = { method = req.method, target = req.target, path = req.path, query = req.query,
        version = req.version, agent = req.headers["x-agent"], twice = req.headers["x-twice"],
        body = await(req:read()), peer = req.peer.host }
      local host, peer_port = req:peername()
      seen.peername = host .. ":" .. tostring(peer_port)
      return 201
    end)
    local list = parse_responses(exchange(port, "PUT /p/q?x=1&y=2 HTTP/1.1\r\nHost: x\r\nX-Agent: spec \r\n"
      .. "X-Twice: a\r\nX-Twice: b\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"))
    assert.are.equal(201, list[1].status)
    assert.are.equal("0", list[1].headers["content-length"])
    assert.are.same({ method = "PUT", target = "/p/q?x=1&y=2", path = "/p/q", query = "x=1&y=2",
      version = "1.1", agent = "spec", twice = "a, b", body = "hello", peer = "127.0.0.1",
      peername = seen.peername }, seen)
    assert.matches("^127%.0%.0%.1:%d+$", seen.peername)
  end))

  it("keeps a request's headers readable after it was answered, whatever came next", in_task(function()
    local first
    local _, port = serve(function(req)
      if req.path == "/first" then
        first = req
        return 200, nil, "kept"
      end
      -- the first request's headers, read only now, after the parser moved on
      return 200, nil, first.headers["x-id"] .. "," .. tostring(first.headers.host) .. ";" .. req.headers["x-id"]
    end)
    local list = parse_responses(exchange(port, "GET /first HTTP/1.1\r\nHost: one\r\nX-Id: 1\r\n\r\n"
      .. "GET /second HTTP/1.1\r\nHost: two\r\nX-ID: 2\r\nConnection: close\r\n\r\n"))
    assert.are.equal(2, #list)
    assert.are.equal("1,one;2", list[2].body)
  end))

  it("writes the status line of a known status with its reason, of another as Unknown", in_task(function()
    local _, port = serve(function(req) return tonumber(req.path:sub(2)), nil, "x" end)
    local out = exchange(port, "GET /404 HTTP/1.1\r\nHost: x\r\n\r\nGET /299 HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /200.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local list = parse_responses(out)
    assert.are.equal(3, #list, out)
    assert.matches("^HTTP/1%.1 404 Not Found\r\n", list[1].head)
    assert.matches("^HTTP/1%.1 299 Unknown\r\n", list[2].head)
    assert.matches("^HTTP/1%.1 200 OK\r\n", list[3].head)
  end))

  it("answers pipelined requests in order, each with its own body, over random splits", in_task(function()
    local _, port = serve(function(req)
      local body = await(req:read())
      if req.path == "/slow" then await(asyncio.sleep(0.05)) end
      return 200, nil, req.path .. ":" .. body
    end)
    local reqs = {}
    for i = 1, 20 do
      local body = string.rep(string.char(96 + i % 26), i * 7)
      local path = i % 3 == 0 and "/slow" or ("/r" .. i)
      if i % 2 == 0 then
        reqs[i] = "POST " .. path .. " HTTP/1.1\r\nHost: x\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
      else
        reqs[i] = "POST " .. path .. " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          .. string.format("%x\r\n", #body) .. body .. "\r\n0\r\n\r\n"
      end
    end
    reqs[21] = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    local all = table.concat(reqs)
    local pieces, pos = {}, 1
    math.randomseed(7)
    while pos <= #all do
      local n = math.random(1, 97)
      pieces[#pieces + 1] = all:sub(pos, pos + n - 1)
      pos = pos + n
    end
    local list = parse_responses(exchange(port, pieces, { pause = 0 }))
    assert.are.equal(21, #list)
    for i = 1, 20 do
      local body = string.rep(string.char(96 + i % 26), i * 7)
      local path = i % 3 == 0 and "/slow" or ("/r" .. i)
      assert.are.equal(path .. ":" .. body, list[i].body)
    end
    assert.are.equal("/last:", list[21].body)
  end))

  it("streams a handler's iterator body chunked, or raw with its content-length", in_task(function()
    local _, port = serve(function(req)
      local i = 0
      local function gen()
        i = i + 1
        if i <= 3 then return "part" .. i end
      end
      if req.path == "/len" then return 200, { ["Content-Length"] = "15" }, gen end
      return 200, nil, gen
    end)
    local list = parse_responses(exchange(port, "GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /len HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert.are.equal("chunked", list[1].headers["transfer-encoding"])
    assert.are.equal("part1part2part3", list[1].body)
    assert.is_nil(list[2].headers["transfer-encoding"])
    assert.are.equal("part1part2part3", list[2].body)
  end))

  it("sends a table body as JSON, and req:json() decodes one", in_task(function()
    local _, port = serve(function(req)
      local v = await(req:json())
      return 200, nil, { got = v.n + 1, list = { 1, 2 } }
    end)
    local list = parse_responses(exchange(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{"n": 4}'))
    assert.are.equal("application/json", list[1].headers["content-type"])
    local v = require("cjson").decode(list[1].body)
    assert.are.equal(5, v.got)
    assert.are.same({ 1, 2 }, v.list)
  end))

  it("answers HEAD without a body but with the body's length", in_task(function()
    local _, port = serve(hello)
    local out = exchange(port, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local first = out:match("^(.-\r\n\r\n)")
    assert.matches("content%-length: 13\r\n", first)
    -- the next response follows the head at once: no body bytes in between
    assert.matches("^HTTP/1%.1 200 OK\r\n", out:sub(#first + 1))
    assert.matches("hello GET /g$", out)
  end))

  it("keeps the connection of an HTTP/1.0 client only when it asks for keep-alive", in_task(function()
    local _, port = serve(hello)
    local out = exchange(port, "GET /a HTTP/1.0\r\n\r\n")
    assert.matches("connection: close", out)
    local list = parse_responses(exchange(port, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"))
    assert.are.equal(2, #list)
    assert.are.equal("keep-alive", list[1].headers.connection)
    assert.are.equal("hello GET /b", list[2].body)
  end))

  it("sends a streamed body to an HTTP/1.0 client raw, then closes", in_task(function()
    local _, port = serve(function()
      local n = 0
      return 200, nil, function()
        n = n + 1
        return n <= 2 and ("x" .. n) or nil
      end
    end)
    local out = exchange(port, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert.matches("connection: close\r\n\r\nx1x2$", out)
    assert.is_nil(out:find("transfer-encoding", 1, true))
  end))

  it("answers 500 when the handler fails, reports it, and keeps the connection", in_task(function()
    local out, status = support.run_alua([[
      local http = require "asyncio.http"
      local server = await http.serve(function(req)
        if req.path == "/bad" then error("handler exploded") end
        return 200, nil, "fine"
      end, "127.0.0.1", 0)
      local _, port = server:sockname()
      local r, w = await asyncio.open_connection("127.0.0.1", port)
      w:write("GET /bad HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      io.write(await r:read())
      server:close()
    ]])
    assert.are.equal(0, status, out)
    assert.matches("HTTP/1.1 500 Internal Server Error", out, 1, true)
    assert.matches("handler exploded", out, 1, true)
    assert.matches("GET /bad", out, 1, true)
    assert.matches("HTTP/1.1 200 OK.-fine$", out)
  end))

  it("runs each handler in a task; a ContextVar it sets does not reach the next request", in_task(function()
    local var = asyncio.ContextVar("request_id", "none")
    local seen = {}
    local _, port = serve(function(req)
      local task = asyncio.current_task()
      seen[#seen + 1] = { before = var:get(), task = task ~= nil and tostring(task):find("^<Task") ~= nil }
      var:set(req.path)
      await(asyncio.sleep(0))
      return 200, nil, var:get()
    end)
    local list = parse_responses(exchange(port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert.are.equal(3, #list)
    assert.are.equal("/a", list[1].body)
    assert.are.equal("/c", list[3].body)
    for i = 1, 3 do assert.are.same({ before = "none", task = true }, seen[i]) end
  end))

  it("answers 500 to a response it cannot send (a bad header or body), and keeps the connection", in_task(function()
    local out, status = support.run_alua([[
      local http = require "asyncio.http"
      local server = await http.serve(function(req)
        if req.path == "/name" then return 200, { ["bad name"] = "x" }, "no" end
        if req.path == "/value" then return 200, { ["x-split"] = "a\r\nx-injected: 1" }, "no" end
        if req.path == "/body" then return 200, nil, true end
        return 200, { ["x-list"] = { "1", 2 } }, "fine"
      end, "127.0.0.1", 0)
      local _, port = server:sockname()
      local r, w = await asyncio.open_connection("127.0.0.1", port)
      w:write("GET /name HTTP/1.1\r\nHost: x\r\n\r\nGET /value HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /body HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      io.write(await r:read())
      server:close()
    ]])
    assert.are.equal(0, status, out)
    local _, n500 = out:gsub("HTTP/1%.1 500 Internal Server Error", "")
    assert.are.equal(3, n500, out)
    assert.matches("invalid header name \"bad name\"", out, 1, true)
    assert.matches("header 'x-split' contains a line break", out, 1, true)
    assert.matches("a body of type boolean", out, 1, true)
    assert.is_nil(out:find("x-injected", 1, true))
    assert.matches("x%-list: 1\r\nx%-list: 2\r\n", out)
    assert.matches("HTTP/1.1 200 OK.-fine$", out)
  end))

  it("ends a connection whose task is cancelled while its handler runs, without a 500", in_task(function()
    local entered = asyncio.Event()
    local handler_task, cancelled
    local _, port = serve(function()
      handler_task = asyncio.current_task()
      entered:set()
      local ok, err = pcall(function() await(asyncio.sleep(10)) end)
      cancelled = not ok and asyncio.CancelledError:is(err)
      if not ok then error(err, 0) end
      return 200
    end)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await(asyncio.wait_for(entered:wait(), 5))
    handler_task:cancel()
    assert.are.equal("", await(asyncio.wait_for(r:read(), 5)))
    assert.is_true(cancelled)
    w:close()
  end))

  it("answers a malformed request with 400 and closes", in_task(function()
    local _, port = serve(hello)
    local out = exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert.matches("^HTTP/1%.1 400 Bad Request", out)
    assert.matches("connection: close", out)
    out = exchange(port, "\1\2\3 garbage\r\n\r\n")
    assert.matches("^HTTP/1%.1 400", out)
  end))

  it("answers 431 to a header block over max_header_size", in_task(function()
    local _, port = serve(hello, { max_header_size = 1024 })
    local out = exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("a", 2000) .. "\r\n\r\n")
    assert.matches("^HTTP/1%.1 431 ", out)
    -- the same size in one header is fine under the default 16 KiB
    local _, port2 = serve(hello)
    out = exchange(port2, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " .. string.rep("a", 2000) .. "\r\n\r\n")
    assert.matches("^HTTP/1%.1 200 ", out)
  end))

  it("answers 414 to a request target over 8 KiB", in_task(function()
    local _, port = serve(hello)
    local out = exchange(port, "GET /" .. string.rep("a", 9000) .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.matches("^HTTP/1%.1 414 ", out)
  end))

  it("answers 413 to a body over max_body_size, declared or chunked", in_task(function()
    local _, port = serve(function(req) return 200, nil, "#" .. #await(req:read()) end, { max_body_size = 100 })
    local out = exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    assert.matches("^HTTP/1%.1 413 ", out)
    local chunk = string.rep("z", 60)
    out = exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "3c\r\n" .. chunk .. "\r\n3c\r\n" .. chunk .. "\r\n0\r\n\r\n")
    assert.matches("^HTTP/1%.1 413 ", out)
    out = exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" .. string.rep("y", 100))
    assert.matches("#100$", out)
  end))

  it("answers 501 to a transfer coding it cannot decode", in_task(function()
    local _, port = serve(hello)
    local out = exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    assert.matches("^HTTP/1%.1 501 ", out)
    out = exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert.matches("^HTTP/1%.1 501 ", out)
  end))

  it("answers 408 and closes when a head comes one byte at a time past header_timeout", in_task(function()
    local _, port = serve(hello, { header_timeout = 0.5 })
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    local head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " .. string.rep("s", 100) .. "\r\n\r\n"
    local t0 = asyncio.get_running_loop():time()
    local writer = asyncio.create_task(function()
      for i = 1, #head do
        w:write(head:sub(i, i))
        await(asyncio.sleep(0.05))
      end
    end)
    local out = await(asyncio.wait_for(r:read(), 5))
    local took = asyncio.get_running_loop():time() - t0
    writer:cancel()
    w:close()
    assert.matches("^HTTP/1%.1 408 ", out)
    assert.is_true(took >= 0.45 and took < 3, "took " .. took)
  end))

  it("closes a connection that sends nothing after header_timeout, and an idle one after idle_timeout", in_task(function()
    local _, port = serve(hello, { header_timeout = 0.3, idle_timeout = 0.3 })
    local out = exchange(port, "", { wait = 5 })
    assert.matches("^HTTP/1%.1 408 ", out)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out = await(asyncio.wait_for(r:read(), 5))
    w:close()
    assert.matches("^HTTP/1%.1 200 .-hello GET /$", out) -- then closed, no 408
  end))

  it("closes after max_requests", in_task(function()
    local _, port = serve(hello, { max_requests = 2 })
    local list = parse_responses(exchange(port, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert.are.equal(2, #list)
    assert.are.equal("close", list[2].headers.connection)
  end))

  it("answers Expect: 100-continue when the handler reads the body, and not otherwise", in_task(function()
    local _, port = serve(function(req)
      if req.path == "/read" then return 200, nil, "got " .. await(req:read()) end
      return 403, nil, "no"
    end)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    local interim = await(asyncio.wait_for(r:readuntil("\r\n\r\n"), 5))
    assert.are.equal("HTTP/1.1 100 Continue\r\n\r\n", interim)
    w:write("body")
    local list = parse_responses(await(asyncio.wait_for(r:readuntil("got body"), 5)))
    assert.are.equal("got body", list[1].body)
    w:write("POST /no HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    local out = await(asyncio.wait_for(r:read(), 5))
    w:close()
    assert.matches("^HTTP/1%.1 403 ", out)
    assert.matches("connection: close", out)
  end))

  it("close() lets a request in flight finish, closes idle connections, stops accepting", in_task(function()
    local started = asyncio.Event()
    local server, port = serve(function(req)
      if req.path == "/slow" then
        started:set()
        await(asyncio.sleep(0.3))
      end
      return 200, nil, "done " .. req.path
    end)
    local r1, w1 = await(asyncio.open_connection("127.0.0.1", port))
    local r2, w2 = await(asyncio.open_connection("127.0.0.1", port))
    w1:write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    w2:write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    await(asyncio.wait_for(r2:readuntil("done /fast"), 5))
    await(asyncio.wait_for(started:wait(), 5))
    server:close()
    -- the idle keep-alive connection is closed at once
    assert.are.equal("", await(asyncio.wait_for(r2:read(), 5)))
    local out = await(asyncio.wait_for(r1:read(), 5))
    assert.matches("connection: close", out)
    assert.matches("done /slow$", out)
    await(asyncio.wait_for(server:wait_closed(), 5))
    local ok, err = pcall(function() await(asyncio.open_connection("127.0.0.1", port)) end)
    assert.is_false(ok)
    assert.is_true(asyncio.OSError:is(err), tostring(err))
    w1:close()
    w2:close()
  end))

  it("survives random bytes without crashing or hanging", in_task(function()
    local _, port = serve(hello, { header_timeout = 1 })
    math.randomseed(11)
    for _ = 1, 30 do
      local bytes = {}
      for i = 1, math.random(1, 300) do bytes[i] = string.char(math.random(0, 255)) end
      local prefix = math.random() < 0.5 and "GET / HTTP/1.1\r\n" or ""
      local out = exchange(port, prefix .. table.concat(bytes), { eof = true, wait = 5 })
      assert.is_true(out == "" or out:find("^HTTP/1%.1 %d%d%d ") ~= nil, out)
    end
    local list = parse_responses(exchange(port, "GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert.are.equal("hello GET /still", list[1].body)
  end))
end)

describe("http.serve with real clients", function()
  it("curl: two URLs in one command reuse the connection", in_task(function()
    local _, port = serve(hello)
    local base = "http://127.0.0.1:" .. port
    local out, err, code = run("curl", "-sv", base .. "/one", base .. "/two")
    assert.are.equal(0, code, err)
    assert.are.equal("hello GET /onehello GET /two", out)
    assert.matches("Re%-using existing connection", err)
  end))

  it("curl: -T - uploads chunked; --http1.0; Expect: 100-continue", in_task(function()
    local _, port = serve(function(req)
      local body = await(req:read())
      return 200, nil, req.version .. " " .. (req.headers["transfer-encoding"] or "-") .. " "
        .. (req.headers.expect or "-") .. " " .. #body .. " " .. body:sub(1, 5)
    end)
    local url = "http://127.0.0.1:" .. port .. "/up"
    local data = string.rep("0123456789", 2000)
    local out, err, code = run_input(data, "curl", "-s", "-T", "-", url)
    assert.are.equal(0, code, err)
    assert.are.equal("1.1 chunked 100-continue 20000 01234", out)
    out, err, code = run("curl", "-s", "--http1.0", url)
    assert.are.equal(0, code, err)
    assert.are.equal("1.0 - - 0 ", out)
    -- curl asks for 100-continue on bodies over 1 MiB; the header forces it here
    out, err, code = run_input(data, "curl", "-sv", "-H", "Expect: 100-continue", "--data-binary", "@-", url)
    assert.are.equal(0, code, err)
    assert.are.equal("1.1 - 100-continue 20000 01234", out)
    assert.matches("HTTP/1.1 100 Continue", err, 1, true)
  end))

  it("wrk: thousands of keep-alive requests, no errors", in_task(function()
    local _, port = serve(hello)
    local out, err, code = run("wrk", "-t1", "-c20", "-d1s", "http://127.0.0.1:" .. port .. "/")
    assert.are.equal(0, code, err)
    local n = tonumber(out:match("(%d+) requests in"))
    assert.is_true(n and n > (VALGRIND and 20 or 1000), out)
    assert.is_nil(out:find("Non%-2xx"), out)
    assert.is_nil(out:find("Socket errors"), out)
  end))

  it("h2load --h1: every request succeeds", in_task(function()
    local _, port = serve(hello)
    local out, err, code = run("h2load", "--h1", "-n", "2000", "-c", "10", "-m", "4",
      "http://127.0.0.1:" .. port .. "/")
    assert.are.equal(0, code, err)
    assert.matches("2000 succeeded, 0 failed, 0 errored", out, 1, true)
    assert.matches("status codes: 2000 2xx", out, 1, true)
  end))

  it("python3 http.client: pipelined keep-alive requests with bodies", in_task(function()
    local _, port = serve(function(req) return 200, nil, "echo:" .. await(req:read()) end)
    local out, err, code = run("python3", "-c", [[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(5):
    c.request("POST", "/", body=("b%d" % i).encode())
    r = c.getresponse()
    print(r.status, r.read().decode())
]], tostring(port))
    assert.are.equal(0, code, err)
    assert.are.equal("200 echo:b0\n200 echo:b1\n200 echo:b2\n200 echo:b3\n200 echo:b4\n", out)
  end))
end)
