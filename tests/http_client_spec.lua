-- http_client_spec.lua — asyncio.http's client against real servers: python3 -m
-- http.server, a Python server sending chunked and gzip bodies, Node's http module, raw
-- sockets (stale keep-alive connections, malformed responses) and alua's own server
-- (redirects, pools, timeouts, TLS both ways with certificates made here).
local support = require "tests.support"
local http = require "asyncio.http"
local PIPE = asyncio.PIPE
local ProtocolError, TimeoutError, OSError = asyncio.ProtocolError, asyncio.TimeoutError, asyncio.OSError

local function in_task(fn) return support.in_task(fn) end

local DIR = io.popen("mktemp -d"):read("l")
local function file(name) return DIR .. "/" .. name end

local cleanup = {}
after_each(function()
  for i = #cleanup, 1, -1 do cleanup[i]() end
  cleanup = {}
  assert.are.equal(0, support.cancel_leftovers(), "tasks left over by the spec")
end)

teardown(function() os.execute("rm -rf " .. DIR) end)

local function serve(handler, opts)
  local server = await(http.serve(handler, "127.0.0.1", 0, opts))
  cleanup[#cleanup + 1] = function()
    server:close()
    await(asyncio.wait_for(server:wait_closed(), 10))
  end
  return server, (select(2, server:sockname()))
end

local function client(opts)
  local c = http.Client(opts)
  cleanup[#cleanup + 1] = function() c:close() end
  return c
end

-- Starts a program that prints a line with its port; returns the port.
local function start_peer(pattern, ...)
  local args = table.pack(...)
  args[args.n + 1] = { stdin = PIPE, stdout = PIPE, stderr = asyncio.STDOUT }
  local p = await(asyncio.create_subprocess_exec(table.unpack(args, 1, args.n + 1)))
  cleanup[#cleanup + 1] = function()
    if p.returncode == nil then pcall(p.kill, p) end
    await(asyncio.wait_for(p:wait(), 10))
  end
  local seen = {}
  while true do
    local line = await(asyncio.wait_for(p.stdout:readline(), 20))
    assert.are_not.equal("", line, "the peer exited: " .. table.concat(seen))
    seen[#seen + 1] = line
    local port = line:match(pattern)
    if port then return tonumber(port) end
  end
end

-- A server on raw sockets: each connection is handed to fn(reader, writer).
local function raw_server(fn)
  local server = await(asyncio.start_server(function(r, w)
    local ok, err = pcall(fn, r, w)
    w:close()
    if not ok and not OSError:is(err) then error(err, 0) end
  end, "127.0.0.1", 0))
  cleanup[#cleanup + 1] = function()
    server:close()
    await(asyncio.wait_for(server:wait_closed(), 10))
  end
  return select(2, server:sockname())
end

local function raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- A Python server of coded bodies: chunked, gzip, deflate (zlib-wrapped or raw), broken
-- gzip, and compression bombs: N MiB of zeros as gzip (/gzip-N, with a content-length) or
-- zlib deflate (/deflate-N, chunked), made once per size at zlib's fastest level.
local PY_CODED = [[
import gzip, zlib, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
DATA = "".join("line %d\n" % i for i in range(5000)).encode()
made = {}
def bomb(kind, mib):
    if (kind, mib) not in made:
        c = zlib.compressobj(1, zlib.DEFLATED, 31 if kind == "gzip" else 15)
        zeros = bytes(1 << 20)
        made[kind, mib] = b"".join([c.compress(zeros) for _ in range(mib)] + [c.flush()])
    return made[kind, mib]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def chunks(self, data, size):
        for i in range(0, len(data), size):
            piece = data[i:i + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")
    def send(self, coding, body, chunk=None):
        """the body with its content coding, chunked in pieces of chunk bytes if given"""
        self.send_response(200)
        if coding:
            self.send_header("Content-Encoding", coding)
        if chunk:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunks(body, chunk)
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    def do_GET(self):
        kind, _, mib = self.path[1:].partition("-")
        if mib.isdigit():
            self.send(kind, bomb(kind, int(mib)), None if kind == "gzip" else 4096)
        elif self.path == "/gzip-chunked":
            self.send("gzip", gzip.compress(DATA), 777)
        elif self.path == "/deflate":
            self.send("deflate", zlib.compress(DATA))
        elif self.path == "/raw-deflate":
            c = zlib.compressobj(wbits=-15)
            self.send("deflate", c.compress(DATA) + c.flush())
        elif self.path == "/bad-gzip":
            self.send("gzip", b"\x1f\x8b\x08\x00garbage-not-gzip")
        else:
            self.send(None, DATA, 1000)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print("port", s.server_address[1], flush=True)
s.serve_forever()
]]


local function expected_lines()
  local t = {}
  for i = 0, 4999 do t[#t + 1] = "line " .. i .. "\n" end
  return table.concat(t)
end

local NODE_SERVER = [[
const http = require("http");
const s = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => body += d);
  req.on("end", () => {
    if (req.url === "/json") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ method: req.method, got: body ? JSON.parse(body) : null }));
      return;
    }
    res.setHeader("x-socket", String(req.socket.remotePort));
    res.end(req.method + " " + req.url + " " + body.length);
  });
});
s.keepAliveTimeout = 5000;
s.listen(0, "127.0.0.1", () => console.log("port " + s.address().port));
]]

describe("http client", function()
  it("fetches from python3 -m http.server", in_task(function()
    local f = assert(io.open(file("hello.txt"), "w"))
    f:write(string.rep("alua\n", 1000))
    f:close()
    local port = start_peer("port (%d+)", "python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "0",
      "--directory", DIR)
    local res = await(http.get("http://127.0.0.1:" .. port .. "/hello.txt", { timeout = 10 }))
    assert.are.equal(200, res.status)
    assert.are.equal("OK", res.reason)
    assert.are.equal("5000", res.headers["content-length"])
    assert.are.equal(string.rep("alua\n", 1000), await(res:read()))
    res = await(http.get("http://127.0.0.1:" .. port .. "/missing", { timeout = 10 }))
    assert.are.equal(404, res.status) -- a status is never an error
    await(res:read())
    res = await(http.head("http://127.0.0.1:" .. port .. "/hello.txt", { timeout = 10 }))
    assert.are.equal(200, res.status)
    assert.are.equal("", await(res:read()))
  end))

  it("reads chunked, gzip and deflate bodies from a Python server", in_task(function()
    local port = start_peer("port (%d+)", "python3", "-u", "-c", PY_CODED)
    local base = "http://127.0.0.1:" .. port
    local want = expected_lines()
    local c = client()
    for _, path in ipairs { "/chunked", "/gzip-chunked", "/deflate", "/raw-deflate" } do
      local res = await(c:get(base .. path, { timeout = 10 }))
      assert.are.equal(200, res.status)
      local parts = {}
      for piece in res:chunks() do parts[#parts + 1] = piece end
      assert.are.equal(want, table.concat(parts), path)
    end
    local res = await(c:get(base .. "/gzip-chunked", { timeout = 10, decompress = false }))
    local raw = await(res:read())
    assert.are.equal("\31\139", raw:sub(1, 2))
    res = await(c:get(base .. "/bad-gzip", { timeout = 10 }))
    local err = raises(function() await(res:read()) end)
    assert.is_true(ProtocolError:is(err), tostring(err))
  end))

  it("caps what a compressed body decompresses to: gzip and deflate bombs", in_task(function()
    local port = start_peer("port (%d+)", "python3", "-u", "-c", PY_CODED)
    local base = "http://127.0.0.1:" .. port
    local MiB = 1024 * 1024
    -- the default limit, 64 MiB: 128 MiB of zeros in ~600 KB of gzip
    local c = client()
    local res = await(c:get(base .. "/gzip-128", { timeout = 60 }))
    assert.are.equal(200, res.status)
    local err = raises(function() await(res:read()) end)
    assert.is_true(ProtocolError:is(err), tostring(err))
    assert.matches("decompresses to more than 67108864 bytes (max_decompressed_size; gzip " .. base .. "/gzip-128)",
      err.message, 1, true)
    -- the client's own limit, pieces by chunks(): no more than the limit is handed out
    local small = client { max_decompressed_size = MiB }
    res = await(small:get(base .. "/deflate-8", { timeout = 60 }))
    local got, zeros = 0, true
    err = raises(function()
      for piece in res:chunks() do
        got = got + #piece
        zeros = zeros and not piece:find("[^%z]")
      end
    end)
    assert.is_true(ProtocolError:is(err), tostring(err))
    assert.matches("more than 1048576 bytes", err.message, 1, true)
    assert.is_true(got <= MiB, "handed out " .. got .. " bytes")
    assert.is_true(zeros)
    -- exactly the limit is within it; a request's option overrides the client's
    res = await(small:get(base .. "/gzip-1", { timeout = 60 }))
    assert.are.equal(string.rep("\0", MiB), await(res:read()))
    res = await(small:get(base .. "/gzip-1", { timeout = 60, max_decompressed_size = MiB - 1 }))
    err = raises(function() await(res:read()) end)
    assert.matches("more than 1048575 bytes", err.message, 1, true)
    res = await(small:get(base .. "/deflate-8", { timeout = 60, max_decompressed_size = math.huge }))
    assert.are.equal(8 * MiB, #await(res:read()))
    res = await(small:get(base .. "/deflate-8", { timeout = 60, decompress = false }))
    assert.is_true(#await(res:read()) < MiB)
    -- the client goes on after the refused bodies (their connections were dropped)
    res = await(c:get(base .. "/gzip-1", { timeout = 60 }))
    assert.are.equal(MiB, #await(res:read()))
    err = raises(function() await(c:get(base .. "/gzip-1", { max_decompressed_size = 0 })) end)
    assert.matches("max_decompressed_size must be positive, got 0", tostring(err), 1, true)
    err = raises(function() http.Client { max_decompressed_size = -1 } end)
    assert.matches("max_decompressed_size must be positive", tostring(err), 1, true)
  end))

  it("talks to Node's http server: keep-alive reuse, bodies both ways, JSON", in_task(function()
    local port = start_peer("port (%d+)", "node", "-e", NODE_SERVER)
    local base = "http://127.0.0.1:" .. port
    local c = client()
    local sockets = {}
    for i = 1, 5 do
      local res = await(c:post(base .. "/p" .. i, string.rep("x", i * 100), { timeout = 10 }))
      assert.are.equal("POST /p" .. i .. " " .. i * 100, await(res:read()))
      sockets[res.headers["x-socket"]] = true
    end
    assert.are.equal(1, #(function() local l = {} for k in pairs(sockets) do l[#l + 1] = k end return l end)())
    local n = 0
    local res = await(c:put(base .. "/stream", nil, { timeout = 10, body = function()
      n = n + 1
      if n <= 4 then return string.rep("y", 1000) end
    end }))
    assert.are.equal("PUT /stream 4000", await(res:read()))
    res = await(c:request("POST", base .. "/json", { json = { a = 1, list = { "x" } }, timeout = 10 }))
    local v = await(res:json())
    assert.are.equal("POST", v.method)
    assert.are.same({ a = 1, list = { "x" } }, v.got)
    res = await(c:delete(base .. "/d", { timeout = 10 }))
    assert.are.equal("DELETE /d 0", await(res:read()))
    -- Node answers Expect: 100-continue itself
    res = await(c:post(base .. "/e", string.rep("e", 300000), { headers = { expect = "100-continue" }, timeout = 10 }))
    assert.are.equal("POST /e 300000", await(res:read()))
  end))

  it("keeps one connection per host busy at a time, up to max_per_host", in_task(function()
    local active, peak = 0, 0
    local _, port = serve(function(req)
      active = active + 1
      peak = math.max(peak, active)
      await(asyncio.sleep(0.02))
      active = active - 1
      local host, peer = req:peername()
      return 200, nil, host .. ":" .. peer
    end)
    local c = client { max_per_host = 3 }
    local tasks = {}
    for i = 1, 12 do
      tasks[i] = asyncio.create_task(function()
        local res = await(c:get("http://127.0.0.1:" .. port .. "/" .. i, { timeout = 10 }))
        return await(res:read())
      end)
    end
    local peers = {}
    for _, t in ipairs(tasks) do peers[await(t)] = true end
    local n = 0
    for _ in pairs(peers) do n = n + 1 end
    assert.are.equal(3, peak)
    assert.are.equal(3, n)
  end))

  it("retries an idempotent request once when a pooled connection was closed by the server", in_task(function()
    local conns = 0
    local port = raw_server(function(r, w)
      conns = conns + 1
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      await(w:drain())
      -- the server drops the connection without saying so (no connection: close)
    end)
    local c = client()
    local url = "http://127.0.0.1:" .. port .. "/"
    for _ = 1, 3 do
      local res = await(c:get(url, { timeout = 5 }))
      assert.are.equal("ok", await(res:read()))
      await(asyncio.sleep(0.05)) -- let the close arrive... or not: either way it must work
    end
    assert.are.equal(3, conns)
  end))

  it("raises ProtocolError for a malformed response, and ConnectionError when refused", in_task(function()
    local port = raw_server(function(r, w)
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 abc nonsense\r\n\r\n")
    end)
    local err = raises(function() await(http.get("http://127.0.0.1:" .. port .. "/", { timeout = 5 })) end)
    assert.is_true(ProtocolError:is(err), tostring(err))
    assert.are.equal("ProtocolError", err.type)
    local port2 = raw_server(function(r, w)
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    end)
    local res = await(http.get("http://127.0.0.1:" .. port2 .. "/", { timeout = 5 }))
    err = raises(function() await(res:read()) end)
    assert.is_true(ProtocolError:is(err), tostring(err))
    local closed = raw_server(function() end)
    err = raises(function() await(http.get("http://127.0.0.1:" .. closed .. "/", { timeout = 5, client = client() })) end)
    assert.is_true(ProtocolError:is(err) or OSError:is(err), tostring(err))
    -- a port nobody listens on
    local tmp = await(asyncio.start_server(function() end, "127.0.0.1", 0))
    local free = select(2, tmp:sockname())
    tmp:close()
    await(tmp:wait_closed())
    err = raises(function() await(http.get("http://127.0.0.1:" .. free .. "/", { timeout = 5 })) end)
    assert.is_true(asyncio.ConnectionError:is(err), tostring(err))
  end))

  it("follows redirects (method rules, relative locations, the limit)", in_task(function()
    local _, port = serve(function(req)
      local body = await(req:read())
      if req.path == "/a" then return 301, { location = "/b" } end
      if req.path == "/b" then return 302, { location = "c" } end
      if req.path == "/post" then return 303, { location = "/final" } end
      if req.path == "/keep" then return 307, { location = "/final" } end
      if req.path == "/loop" then return 302, { location = "/loop" } end
      return 200, nil, req.method .. " " .. req.path .. " " .. body
    end)
    local base = "http://127.0.0.1:" .. port
    local res = await(http.get(base .. "/a", { timeout = 5 }))
    assert.are.equal(200, res.status)
    assert.are.equal(base .. "/c", res.url)
    assert.are.equal("GET /c ", await(res:read()))
    res = await(http.post(base .. "/post", "data", { timeout = 5 }))
    assert.are.equal("GET /final ", await(res:read()))
    res = await(http.post(base .. "/keep", "data", { timeout = 5 }))
    assert.are.equal("POST /final data", await(res:read()))
    res = await(http.get(base .. "/loop", { timeout = 5 }))
    assert.are.equal(302, res.status)
    await(res:read())
    res = await(http.get(base .. "/a", { timeout = 5, redirects = 0 }))
    assert.are.equal(301, res.status)
    assert.are.equal("/b", res.headers.location)
    await(res:read())
  end))

  it("times out the whole request (head and body) with TimeoutError", in_task(function()
    local _, port = serve(function(req)
      if req.path == "/slowhead" then await(asyncio.sleep(5)) end
      local n = 0
      return 200, nil, function()
        n = n + 1
        if n == 1 then return "first" end
        await(asyncio.sleep(5))
      end
    end)
    local base = "http://127.0.0.1:" .. port
    local t0 = asyncio.get_running_loop():time()
    local err = raises(function() await(http.get(base .. "/slowhead", { timeout = 0.2 })) end)
    assert.is_true(TimeoutError:is(err), tostring(err))
    local res = await(http.get(base .. "/slowbody", { timeout = 0.3 }))
    assert.are.equal(200, res.status)
    err = raises(function() await(res:read()) end)
    assert.is_true(TimeoutError:is(err), tostring(err))
    assert.is_true(asyncio.get_running_loop():time() - t0 < 3)
  end))

  it("writes each request's head as asked, the same URL with and without headers", in_task(function()
    -- the head of a request without headers is kept per URL: the caller's headers, a
    -- body or decompress = false must still change what is sent
    local heads = {}
    local port = raw_server(function(r, w)
      while true do
        local head = await(r:readuntil("\r\n\r\n"))
        local len = tonumber(head:lower():match("content%-length: (%d+)")) or 0
        local body = len > 0 and await(r:readexactly(len)) or ""
        heads[#heads + 1] = head .. body
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await(w:drain())
      end
    end)
    local c = client()
    local url = "http://127.0.0.1:" .. port .. "/p?q=1"
    local function get(opts, method)
      local res = await(c:request(method or "GET", url, opts or { timeout = 5 }))
      assert.are.equal("ok", await(res:read()))
    end
    get()
    get()
    get { headers = { Host = "example.test", ["User-Agent"] = "me", ["x-a"] = { "1", "2" } }, timeout = 5 }
    get { decompress = false }
    get { body = "abc" }
    get(nil, "POST")
    get { headers = { host = {} } } -- a list of no values: no host line at all
    get()
    local default = "GET /p?q=1 HTTP/1.1\r\nhost: 127.0.0.1:" .. port
      .. "\r\nuser-agent: alua\r\naccept-encoding: gzip, deflate\r\n\r\n"
    assert.are.equal(8, #heads)
    assert.are.equal(default, heads[1])
    assert.are.equal(default, heads[2])
    local h3 = heads[3]
    assert.matches("\r\nHost: example.test\r\n", h3, 1, true)
    assert.matches("\r\nUser-Agent: me\r\n", h3, 1, true)
    assert.matches("\r\nx-a: 1\r\nx-a: 2\r\n", h3, 1, true)
    assert.is_nil(h3:find("host: 127", 1, true))
    assert.is_nil(h3:find("user-agent: alua", 1, true))
    assert.are.equal("GET /p?q=1 HTTP/1.1\r\nhost: 127.0.0.1:" .. port .. "\r\nuser-agent: alua\r\n\r\n", heads[4])
    assert.are.equal(default:sub(1, -3) .. "content-length: 3\r\n\r\nabc", heads[5])
    assert.are.equal("POST" .. default:sub(4, -3) .. "content-length: 0\r\n\r\n", heads[6])
    assert.is_nil(heads[7]:lower():find("host:", 1, true))
    assert.are.equal(default, heads[8])
  end))

  it("waits for 100 Continue before the body when asked to (Expect: 100-continue)", in_task(function()
    -- a raw server: /continue answers 100 once it saw no body come with the head; /refuse
    -- answers 413 without reading the body; /no-expect refuses the expectation with 417;
    -- /silent never answers 100
    local conns, heads, early = 0, {}, {}
    local port = raw_server(function(r, w)
      conns = conns + 1
      while true do
        local ok, head = pcall(function() return await(r:readuntil("\r\n\r\n")) end)
        if not ok then break end -- the client closed the connection
        heads[#heads + 1] = head
        local path = head:match("^%u+ (%S+)")
        local expect = head:lower():find("\r\nexpect: 100%-continue\r\n") ~= nil
        local len = tonumber(head:lower():match("\r\ncontent%-length: (%d+)"))
        if path == "/refuse" then
          w:write("HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
        elseif path == "/no-expect" and expect then
          w:write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        else
          if path == "/continue" then
            -- a body byte within 0.1 s (well inside the client's 1 s wait) came too early
            early[#early + 1] = pcall(function() await(asyncio.wait_for(r:read(1), 0.1)) end)
            w:write("HTTP/1.1 100 Continue\r\n\r\n")
          end
          local body = await(r:readexactly(len))
          w:write("HTTP/1.1 200 OK\r\nContent-Length: " .. (#body + 4) .. "\r\n\r\ngot " .. body)
        end
        await(w:drain())
      end
    end)
    local base = "http://127.0.0.1:" .. port
    local c = client()
    local expect = { expect = "100-continue" }
    local big = string.rep("b", 100000)
    local res = await(c:post(base .. "/continue", big, { headers = expect, timeout = 10 }))
    assert.are.equal("got " .. big, await(res:read()))
    local pieces = 0
    local function three()
      pieces = pieces + 1
      if pieces <= 3 then return string.rep("s", 1000) end
    end
    res = await(c:put(base .. "/continue", three,
      { headers = { Expect = "100-Continue", ["content-length"] = 3000 }, timeout = 10 }))
    assert.are.equal("got " .. string.rep("s", 3000), await(res:read()))
    assert.are.same({ false, false }, early) -- no body byte came before the 100
    assert.are.equal(1, conns)
    -- a final answer first: the body is never sent, the connection not used again
    pieces = 0
    res = await(c:post(base .. "/refuse", three, { headers = expect, timeout = 10 }))
    assert.are.equal(413, res.status)
    assert.are.equal("big!", await(res:read()))
    assert.are.equal(0, pieces)
    res = await(c:post(base .. "/echo", "after", { timeout = 10 }))
    assert.are.equal("got after", await(res:read()))
    assert.are.equal(2, conns)
    -- 417: sent again without the expectation, the streamed body with it
    pieces = 0
    local n = #heads
    res = await(c:post(base .. "/no-expect", three,
      { headers = { expect = "100-continue", ["content-length"] = "3000" }, timeout = 10 }))
    assert.are.equal(200, res.status)
    assert.are.equal("got " .. string.rep("s", 3000), await(res:read()))
    assert.are.equal(n + 2, #heads)
    assert.matches("\r\nexpect: 100%-continue\r\n", heads[n + 1])
    assert.is_nil(heads[n + 2]:lower():find("\r\nexpect:", 1, true))
    -- no answer at all: the body goes after a second
    res = await(c:post(base .. "/silent", "anyway", { headers = expect, timeout = 10 }))
    assert.are.equal("got anyway", await(res:read()))
  end))

  it("sends Expect: 100-continue bodies to alua's server", in_task(function()
    local _, port = serve(function(req) return 200, nil, "read " .. #await(req:read()) end)
    local c = client()
    for _, size in ipairs { 10, 2 * 1024 * 1024 } do
      local res = await(c:post("http://127.0.0.1:" .. port .. "/up", string.rep("x", size),
        { headers = { expect = "100-continue" }, timeout = 20 }))
      assert.are.equal("read " .. size, await(res:read()))
    end
  end))

  it("frees the connection of a response that came whole with its head at once", in_task(function()
    -- /whole: head and body in one write; /split: the body 50 ms after the head
    local conns = 0
    local port = raw_server(function(r, w)
      conns = conns + 1
      while true do
        local ok, head = pcall(function() return await(r:readuntil("\r\n\r\n")) end)
        if not ok then break end
        local path = head:match("^%u+ (%S+)")
        if path == "/split" then
          w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
          await(w:drain())
          await(asyncio.sleep(0.05))
          w:write("split")
        else
          w:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #path .. "\r\n\r\n" .. path)
        end
        await(w:drain())
      end
    end)
    local base = "http://127.0.0.1:" .. port
    local c = client { max_per_host = 1 }
    local first = await(c:get(base .. "/whole", { timeout = 5 }))
    -- with one connection per host, a second request proceeds only if the first's went
    -- back to the pool although its body was not read yet
    local second = await(c:get(base .. "/second", { timeout = 5 }))
    assert.are.equal("/whole", await(first:read()))
    first:close()
    -- closing a response whose body came whole must not drop its connection: it went back
    -- to the pool already and serves the next request
    local dropped = await(c:get(base .. "/dropped", { timeout = 5 }))
    dropped:close()
    assert.are.equal("", await(dropped:read()))
    local third = await(c:get(base .. "/split", { timeout = 5 }))
    assert.are.equal("split", await(third:read()))
    assert.are.equal("/second", await(second:read()))
    local pieces = {}
    for piece in (await(c:get(base .. "/chunks", { timeout = 5 }))):chunks() do pieces[#pieces + 1] = piece end
    assert.are.same({ "/chunks" }, pieces)
    assert.are.equal(1, conns)
  end))

  it("checks its arguments", in_task(function()
    local err = raises(function() await(http.get("ftp://x/")) end)
    assert.matches("unsupported URL", tostring(err))
    err = raises(function() await(http.get("http://127.0.0.1:1/", { timout = 1 })) end)
    assert.matches("unknown option 'timout'", tostring(err))
    err = raises(function() await(http.request("GET / X", "http://127.0.0.1:1/")) end)
    assert.matches("invalid method", tostring(err))
    err = raises(function() await(http.get("http://127.0.0.1:1/", { headers = { ["x"] = "a\r\nb: c" } })) end)
    assert.matches("line break", tostring(err))
  end))

  it("speaks TLS both ways, with certificates made here", in_task(function()
    assert.is_true(os.execute("sh tests/tls_certs.sh " .. DIR .. " >/dev/null"))
    local _, port = serve(function(req) return 200, nil, "secure " .. req.path end,
      { ssl = { certfile = file("server.pem"), keyfile = file("server.key") } })
    local c = client { ssl = { cafile = file("ca.pem") } }
    local res = await(c:get("https://localhost:" .. port .. "/x", { timeout = 10 }))
    assert.are.equal("secure /x", await(res:read()))
    res = await(c:get("https://127.0.0.1:" .. port .. "/y", { timeout = 10 }))
    assert.are.equal("secure /y", await(res:read()))
    -- without the test CA the server is not trusted
    local err = raises(function() await(http.get("https://127.0.0.1:" .. port .. "/", { timeout = 10 })) end)
    assert.is_true(asyncio.SSLError:is(err), tostring(err))
    -- curl as the client of the TLS server
    local p = await(asyncio.create_subprocess_exec("curl", "-s", "--cacert", file("ca.pem"),
      "https://localhost:" .. port .. "/curl", { stdout = PIPE }))
    local out = await(asyncio.wait_for(p:communicate(), 20))
    assert.are.equal("secure /curl", out)
  end))
end)
