-- luasocket_spec.lua — asyncio.socket, LuaSocket's API on alua: the same exchange run by
-- stock lua5.4 with the real LuaSocket and by alua gives the same results (receive
-- patterns, prefixes, partial results on timeout and close, send ranges, servers, select,
-- UDP, the helpers); and unchanged Debian libraries (socket.http, socket.smtp, socket.ftp,
-- lua-sec's ssl.https, lua-redis) run many at once in tasks against real peers (python3's
-- asyncio, ssl, aiosmtpd and pyftpdlib, redis-server).

local support = require "tests.support"
local socket = require "asyncio.socket"

local ALUA = os.getenv("ALUA_BIN") or "build/bin/alua"
-- Debian's python3 (aiosmtpd and pyftpdlib are Debian packages), whatever python3 PATH finds first
local PYTHON = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"
-- the one timed assertion (the issue's "under 1 s") gets room under valgrind
local VALGRIND = (os.getenv("ALUA_RUNNER") or ""):find("valgrind") ~= nil

after_each(function()
  local left = support.cancel_leftovers()
  assert.are.equal(0, left, "tasks left over by the spec")
end)

local run, start_peer, stop_peer = support.run, support.start_peer, support.stop_peer

-- The peer runs the body; it is stopped afterwards whether the body failed or not.
local function with_peer(peer, body, ...)
  local ok, err = pcall(body, ...)
  stop_peer(peer)
  assert(ok, err)
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]*") do out[#out + 1] = l end
  return out
end

-- Runs script with its arguments under stock lua5.4 (the real LuaSocket and lua-sec) and
-- under alua with asyncio.socket installed, at once; both must print the same lines.
local function same_as_reference(script, ...)
  local ref = asyncio.create_task(run, "timeout", "60", "lua5.4", script, ...)
  local install = 'require("asyncio.socket").install()'
  local ours = asyncio.create_task(run, "timeout", "60", ALUA, "-e", install, script, ...)
  local rout, rerr, rstatus = await(ref)
  local aout, aerr, astatus = await(ours)
  assert.are.equal(0, rstatus, "lua5.4 with LuaSocket failed: " .. rerr)
  assert.are.equal(0, astatus, "alua failed: " .. aerr)
  assert.truthy(rout:find("\nend\n"), "the reference run did not finish: " .. rout)
  assert.are.same(lines(rout), lines(aout))
end

describe("the same exchange under lua5.4 with LuaSocket and under alua", function()
  it("gives the same results, call for call", function()
    local peer, port = start_peer("^port (%d+)", ALUA, "tests/luasocket/peer.lua")
    with_peer(peer, same_as_reference, "tests/luasocket/exchange.lua", tostring(port))
  end)
end)

-- A python3 HTTP/1.1 server that answers every request after `delay` seconds with the
-- request's path as the body.
local PY_SLOW_HTTP = [[
import asyncio, sys
delay = float(sys.argv[1])
async def handle(r, w):
    try:
        line = await r.readline()
        while (await r.readline()) not in (b"\r\n", b""): pass
        await asyncio.sleep(delay)
        body = line.split(b" ")[1]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await w.drain()
    finally:
        w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print("port", s.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
]]

describe("socket.http (Debian's lua-socket) after install()", function()
  socket.install()
  local http = require "socket.http"

  it("50 requests in tasks, each answered after 0.2 s, finish together in under 1 s", function()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_SLOW_HTTP, "0.2")
    with_peer(peer, function()
      local base = "http://127.0.0.1:" .. port .. "/"
      local tasks = {}
      local t0 = asyncio.get_running_loop():time()
      for i = 1, 50 do
        tasks[i] = asyncio.create_task(function()
          local body, code = http.request(base .. "r" .. i)
          return { body, code }
        end)
      end
      local results = { await(asyncio.gather(table.unpack(tasks))) }
      local elapsed = asyncio.get_running_loop():time() - t0
      for i = 1, 50 do assert.are.same({ "/r" .. i, 200 }, results[i]) end
      assert.is_true(elapsed < (VALGRIND and 10 or 1), "took " .. elapsed .. " s")
    end)
  end)

  it("outside a task a request runs the loop until it is done", function()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_SLOW_HTTP, "0")
    with_peer(peer, function()
      local out, errout, status = run("timeout", "60", ALUA, "-e", ([[
        require("asyncio.socket").install()
        local http = require "socket.http"
        print(http.request("http://127.0.0.1:%d/top"))]]):format(port))
      assert.are.equal(0, status, errout)
      assert.are.equal("/top\t200", out:match("^[^\t]*\t%d+"))
    end)
  end)

  it("a refused connection is http.request's nil, \"connection refused\"", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    assert.are.same({ nil, "connection refused" }, { http.request("http://127.0.0.1:" .. port .. "/") })
  end)
end)

-- A listening server, a client connected to it and the server's side of the connection.
local function connected_pair()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local client = assert(socket.connect("127.0.0.1", port))
  return server, client, assert(server:accept())
end

-- A LuaSocket socket keeps a program running only while a call waits on it, as a blocking
-- call would: an open socket nobody waits on lets the script end, as under lua5.4.
describe("what keeps the program running", function()
  local LIMIT = tostring(20 * support.SLOWDOWN)

  -- a file holding src, for a child alua to run
  local function script(src)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    return path
  end

  it("sockets left open do not, as under lua5.4 with LuaSocket", support.in_task(function()
    local out, err, status = run("timeout", LIMIT, "lua5.4", "tests/luasocket/left_open.lua")
    assert.are.equal(0, status, "lua5.4 with LuaSocket: " .. err)
    local aout, aerr, astatus = run("timeout", LIMIT, ALUA, "-e", 'require("asyncio.socket").install()',
      "tests/luasocket/left_open.lua")
    assert.are.equal(0, astatus, "alua kept running (124: killed by timeout): " .. aerr)
    assert.are.same(lines(out), lines(aout))
  end))

  it("a server left open in asyncio.run does not, collected or not", support.in_task(function()
    local path = script([[
      local socket = require "asyncio.socket"
      kept = nil
      asyncio.run(function()
        kept = assert(socket.bind("127.0.0.1", 0))
        local dropped = assert(socket.bind("127.0.0.1", 0))
        local _, port = kept:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        assert(kept:accept())
      end)
      print("run returned")
    ]])
    local out, err, status = run("timeout", LIMIT, ALUA, path)
    os.remove(path)
    assert.are.equal(0, status, "kept running (124: killed by timeout): " .. err)
    assert.are.equal("run returned\n", out)
  end))

  it("a task waiting in accept() or receive() with no timeout does, until they return", support.in_task(function()
    local path = script([[
      local socket = require "asyncio.socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      asyncio.create_task(function()
        local c = assert(server:accept())
        print("accepted")
        io.stdout:flush()
        print("received", (c:receive("*l")))
        c:close()
        server:close()
      end)
      print("port " .. select(2, server:getsockname()))
      io.stdout:flush()
    ]])
    local p = await(asyncio.create_subprocess_exec("timeout", LIMIT, ALUA, path,
      { stdout = asyncio.PIPE, stderr = asyncio.STDOUT }))
    local port = tonumber(await(asyncio.wait_for(p.stdout:readline(), 10 * support.SLOWDOWN)):match("^port (%d+)"))
    assert.is_number(port)
    await(asyncio.sleep(0.2)) -- the script's main chunk is over: only the waiting task is left
    local c = assert(socket.connect("127.0.0.1", port))
    assert.are.equal("accepted\n", await(asyncio.wait_for(p.stdout:readline(), 10 * support.SLOWDOWN)))
    await(asyncio.sleep(0.2))
    assert(c:send("hello\n"))
    local rest = await(asyncio.wait_for(p.stdout:read(), 10 * support.SLOWDOWN))
    c:close()
    assert.are.equal(0, await(p:wait()))
    os.remove(path)
    assert.are.equal("received\thello\n", rest)
  end))
end)

describe("asyncio.socket in tasks", function()
  it("a receive waiting in one task does not hold up others", support.in_task(function()
    local server, client, peer = connected_pair()
    local order = {}
    local reader = asyncio.create_task(function()
      local line = peer:receive()
      order[#order + 1] = "received " .. line
    end)
    local other = asyncio.create_task(function()
      socket.sleep(0.05)
      order[#order + 1] = "slept"
      client:send("late line\n")
    end)
    await(asyncio.gather(reader, other))
    assert.are.same({ "slept", "received late line" }, order)
    client:close()
    peer:close()
    server:close()
  end))

  it("cancelling a task blocked in receive raises CancelledError in it, not a result", support.in_task(function()
    local server, client, peer = connected_pair()
    local t = asyncio.create_task(function() return peer:receive() end)
    support.tick(3)
    t:cancel()
    local ok, err = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(asyncio.CancelledError:is(err))
    client:send("after\n")
    assert.are.equal("after", peer:receive())
    client:close()
    peer:close()
    server:close()
  end))

  -- receive(n) and "*a" gather what has come in the socket object's own buffer while
  -- they wait for the rest; cut short by a cancellation they dropped it
  it("a receive(n) or \"*a\" cancelled while it waits for the rest leaves what it had for the next receive", support.in_task(function()
    for _, pattern in ipairs({ 1000, "*a" }) do
      local server, client, peer = connected_pair()
      client:send(("x"):rep(300) .. "\n" .. ("y"):rep(199))
      assert.are.equal(("x"):rep(300), peer:receive()) -- the rest is now in the object's buffer
      client:send(("z"):rep(100))
      local t = asyncio.create_task(function() return peer:receive(pattern) end)
      support.tick(3)
      t:cancel()
      local ok, err = pcall(await, t)
      assert.is_false(ok)
      assert.is_true(asyncio.CancelledError:is(err))
      client:send("!")
      peer:settimeout(10)
      assert.are.equal(("y"):rep(199) .. ("z"):rep(100) .. "!", peer:receive(300), "pattern " .. pattern)
      client:close()
      peer:close()
      server:close()
    end
  end))

  -- the wait a receive in a finalizer could not make left its future in the stream's one
  -- reader place: every receive after it that had to wait got "another task is already
  -- waiting to read from this stream"
  it("a receive in a finalizer that cannot wait leaves the socket's receives working", support.in_task(function()
    local server, client, peer = connected_pair()
    local in_finalizer
    setmetatable({}, { __gc = function() in_finalizer = select(2, pcall(peer.receive, peer)) end })
    collectgarbage() -- the finalizer runs inside this C call, where nothing can suspend
    assert.is_truthy(tostring(in_finalizer):find("cannot suspend here", 1, true), tostring(in_finalizer))
    local receiving = asyncio.create_task(function() return peer:receive() end)
    support.tick(3) -- it waits now
    client:send("hello\n")
    assert.are.equal("hello", await(asyncio.wait_for(receiving, 5)))
    client:close()
    peer:close()
    server:close()
  end))

  it("a receive waiting in one task gives nil, \"closed\" when another task or a callback closes the socket", support.in_task(function()
    -- the closer runs while the reader is queued, so the stream is gone (its close callback
    -- ran) before the reader looks at it again: the line's fast path read a freed stream's
    -- NULL and crashed (SIGSEGV) where the Lua path had answered "closed"
    local loop = asyncio.get_running_loop()
    for _, pattern in ipairs({ "*l", 5, "*a" }) do
      for _, closer in ipairs({ "task", "call_soon" }) do
        for _, timeout in ipairs({ false, 5 }) do
          local server, client, peer = connected_pair()
          if timeout then peer:settimeout(timeout * support.SLOWDOWN) end
          client:send("par") -- a partial line and count: the buffer holds them, not enough
          local reader = asyncio.create_task(function() return peer:receive(pattern) end)
          support.tick(3)
          if closer == "task" then
            asyncio.create_task(function() peer:close() end)
          else
            loop:call_soon(function() peer:close() end)
          end
          local got = { await(asyncio.wait_for(reader, 5 * support.SLOWDOWN)) }
          local case = ("%s, closed by a %s, timeout %s"):format(pattern, closer, tostring(timeout))
          if pattern == "*a" then
            assert.are.same({ "par" }, got, case)
          else -- the partial result: what the call had taken before the close dropped the rest
            assert.are.same({ nil, "closed" }, { got[1], got[2] }, case)
            assert.are.equal(got[3], ("par"):sub(1, #got[3]), case)
          end
          client:close()
          server:close()
        end
      end
    end
  end))

  it("settimeout(0) polls: receive gives nil, \"timeout\" until data is there", support.in_task(function()
    local server, client, peer = connected_pair()
    peer:settimeout(0)
    assert.are.same({ nil, "timeout", "" }, { peer:receive() })
    client:send("polled\n")
    local line
    for _ = 1, 100 do
      line = peer:receive()
      if line then break end
      socket.sleep(0.01)
    end
    assert.are.equal("polled", line)
    client:close()
    peer:close()
    server:close()
  end))

  it("select sees a connection the peer reset, and receive reports it", function()
    -- python3 accepts one connection, reads a byte, then resets it (SO_LINGER 0, close)
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", [[
import socket, struct, time
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
print("port", ls.getsockname()[1], flush=True)
c, _ = ls.accept()
c.recv(1)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
time.sleep(10)
]])
    with_peer(peer, function()
      local c = assert(socket.connect("127.0.0.1", port))
      c:send("x")
      local r, _, err = socket.select({ c }, nil, 5)
      assert.are.same({ 1, c, nil }, { #r, r[1], err })
      assert.are.same({ nil, "closed", "" }, { c:receive() })
      c:close()
    end)
  end)

  it("a large count then \"*a\" keep every byte in order (8 MiB sent in one call)", support.in_task(function()
    local server, client, peer = connected_pair()
    local block = {}
    for i = 1, 4096 do block[i] = string.char(i % 251) end
    block = table.concat(block)
    local data = {}
    for i = 1, 2048 do data[i] = ("%08d"):format(i) .. block:sub(9) end
    data = table.concat(data) -- 8 MiB, every 4 KiB block numbered
    local writer = asyncio.create_task(function()
      assert.are.equal(#data + 0.0, client:send(data))
      client:close()
    end)
    local first = peer:receive(3 * 1024 * 1024 + 5)
    local rest = peer:receive("*a")
    await(writer)
    assert.are.equal(#data, #first + #rest)
    assert.is_true(first .. rest == data, "the bytes differ")
    peer:close()
    server:close()
  end))

  it("lines and counts longer than the stream's buffer, arriving in pieces, come whole and in order", support.in_task(function()
    local server, client, peer = connected_pair()
    local long = ("0123456789abcde\r"):rep(12 * 1024) -- 192 KiB with a "\r" every 16 bytes
    local writer = asyncio.create_task(function()
      for i = 1, #long, 5000 do -- in pieces, with the loop turning between them
        client:send(long:sub(i, i + 4999))
        socket.sleep(0)
      end
      client:send("\nshort\r\n")
      client:send(long .. "tail")
      client:close()
    end)
    local line = peer:receive()
    assert.are.equal(#long - 12 * 1024, #line)
    assert.is_true(line == long:gsub("\r", ""), "the line differs")
    assert.are.equal("short", peer:receive())
    local count = peer:receive(#long)
    assert.is_true(count == long, "the count differs")
    assert.are.same({ nil, "closed", "tail" }, { peer:receive() })
    await(writer)
    peer:close()
    server:close()
  end))

  it("each call's timeout counts from that call, whatever the calls before it waited", support.in_task(function()
    local server, client, peer = connected_pair()
    peer:settimeout(0.3)
    local writer = asyncio.create_task(function()
      socket.sleep(0.2)
      client:send("first\n")
    end)
    local t0 = socket.gettime()
    assert.are.equal("first", peer:receive()) -- its bound was t0 + 0.3
    local t1 = socket.gettime()
    assert.are.same({ nil, "timeout", "" }, { peer:receive() }) -- must wait until t1 + 0.3
    local t2 = socket.gettime()
    assert.is_true(t2 - t1 >= 0.29, ("timed out %.3f s after the call began"):format(t2 - t1))
    assert.is_true(t1 - t0 >= 0.19)
    await(writer)
    peer:settimeout(5) -- a wait bounded at 5 s that ends after 0.05 s
    writer = asyncio.create_task(function()
      socket.sleep(0.05)
      client:send("second\n")
    end)
    assert.are.equal("second", peer:receive())
    peer:settimeout(0.05) -- then a shorter bound: the call ends at it, not at the last one's
    local t3 = socket.gettime()
    assert.are.same({ nil, "timeout", "" }, { peer:receive() })
    local t4 = socket.gettime()
    assert.is_true(t4 - t3 >= 0.049)
    assert.is_true(t4 - t3 < 2.5 * support.SLOWDOWN, ("timed out after %.3f s"):format(t4 - t3))
    client:send("late\n")
    peer:settimeout(5)
    assert.are.equal("late", peer:receive())
    await(writer)
    client:close()
    peer:close()
    server:close()
  end))

  it("protect and newtry let the task wait inside them, and pass a cancellation through", support.in_task(function()
    local server, client, peer = connected_pair()
    local finalized = {}
    local get = socket.protect(function(finalize_waits)
      local try = socket.newtry(function()
        if finalize_waits then socket.sleep(0.01) end -- a finalizer that waits
        finalized[#finalized + 1] = finalize_waits and "waited" or "plain"
      end)
      local line = try(peer:receive()) -- waits for the client's line
      try(line ~= "fail", "told to fail")
      return line, "second"
    end)
    local t = asyncio.create_task(get)
    support.tick(3)
    client:send("hello\n")
    assert.are.same({ "hello", "second" }, { await(t) })
    client:send("fail\n")
    assert.are.same({ nil, "told to fail" }, { get(true) })
    assert.are.same({ "waited" }, finalized)
    -- a cancellation is no try failure: it goes through protect, and no finalizer runs
    local blocked = asyncio.create_task(get)
    support.tick(3)
    blocked:cancel()
    local ok, err = pcall(await, blocked)
    assert.is_false(ok)
    assert.is_true(asyncio.CancelledError:is(err))
    assert.are.same({ "waited" }, finalized)
    assert.are.same({ "a", "b" }, { socket.skip(1, "x", "a", "b") })
    assert.are.equal(0, select("#", socket.skip(3, "x")))
    client:close()
    peer:close()
    server:close()
  end))

  it("a port is what LuaSocket's getaddrinfo takes: a number, a numeric string or a service name", function()
    -- as lua5.4 with LuaSocket 3 answers each (an unknown service is a result, not a raise)
    local server = assert(socket.bind("127.0.0.1", "0"))
    local _, port = server:getsockname()
    local c = assert(socket.connect("127.0.0.1", tostring(port)))
    c:close()
    assert.are.same({ nil, "service not supported for socket type" }, { socket.connect("127.0.0.1", "no-such-service") })
    assert.are.same({ nil, "service not supported for socket type" }, { socket.bind("127.0.0.1", "no-such-service") })
    local t = socket.tcp()
    assert.are.same({ nil, "service not supported for socket type" }, { t:connect("127.0.0.1", "no-such-service") })
    t:close()
    local u = socket.udp()
    assert.are.same({ nil, "service not supported for socket type" }, { u:setsockname("127.0.0.1", "no-such-service") })
    assert.are.same({ nil, "service not supported for socket type" }, { u:sendto("x", "127.0.0.1", "no-such-service") })
    assert.are.same({ nil, "service not supported for socket type" }, { u:setpeername("127.0.0.1", 70000) })
    u:close()
    server:close()
  end)

  it("bad arguments raise errors that name the call", function()
    local t = socket.tcp()
    assert.matches("bad argument #1 to 'protect' %(function expected", support.raises(socket.protect, 42))
    assert.matches("bad argument #1 to 'receive' %(invalid receive pattern%)", support.raises(t.receive, t, "*z"))
    -- (LuaSocket's luaL_checkstring: a port is a string for getaddrinfo, a number converts)
    assert.matches("bad argument #2 to 'connect' %(string expected", support.raises(t.connect, t, "127.0.0.1"))
    assert.matches("'setoption' %(unsupported option `nope'%)", support.raises(t.setoption, t, "nope", 1))
    assert.matches("tcp{server} expected, got tcp{master}", support.raises(t.accept, t))
    t:close()
    -- skip's count must not reach below its own arguments: a negative one returned slots
    -- of the caller's stack (the function itself, then memory past the stack: a crash)
    for _, d in ipairs({ -1, -3, -100000, math.mininteger }) do
      assert.matches("bad argument #1 to 'skip' %(.*negative", support.raises(socket.skip, d, "a"))
    end
    assert.matches("bad argument #1 to 'skip' %(number expected, got no value", support.raises(socket.skip))
    assert.are.same({ "x", "a" }, { socket.skip(0, "x", "a") })
    assert.are.equal(0, select("#", socket.skip(math.maxinteger, "x")))
  end)
end)


describe("lua-sec's ssl.https after install()", function()
  local DIR = io.popen("mktemp -d"):read("l")
  assert(os.execute("tests/tls_certs.sh '" .. DIR .. "'"), "tests/tls_certs.sh failed")
  local CA = DIR .. "/ca.pem"
  teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

  -- a python3 HTTPS server with the test CA's certificate for localhost and 127.0.0.1
  local PY_HTTPS = [[
import asyncio, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
async def handle(r, w):
    try:
        line = await r.readline()
        while (await r.readline()) not in (b"\r\n", b""): pass
        body = b"secure " + line.split(b" ")[1]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await w.drain()
    except (ssl.SSLError, ConnectionError):
        pass
    finally:
        w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print("port", s.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
]]

  socket.install()
  local https = require "ssl.https"
  local ltn12 = require "ltn12"

  it("requests, verified against the test CA, from tasks at once", function()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_HTTPS, DIR .. "/server.pem", DIR .. "/server.key")
    with_peer(peer, function()
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = asyncio.create_task(function()
          local parts = {}
          local ok, code = https.request {
            url = ("https://localhost:%d/t%d"):format(port, i), sink = ltn12.sink.table(parts),
            verify = "peer", cafile = CA,
          }
          return { ok, code, table.concat(parts) }
        end)
      end
      local results = { await(asyncio.gather(table.unpack(tasks))) }
      for i = 1, 10 do assert.are.same({ 1, 200, "secure /t" .. i }, results[i]) end
      -- the string form (lua-sec's default: no verification)
      local body, code = https.request(("https://127.0.0.1:%d/plain"):format(port))
      assert.are.same({ "secure /plain", 200 }, { body, code })
    end)
  end)

  it("a certificate from another CA fails as lua-sec's does", function()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_HTTPS, DIR .. "/server.pem", DIR .. "/server.key")
    with_peer(peer, function()
      local res, err = https.request { url = ("https://localhost:%d/"):format(port), verify = "peer",
        cafile = DIR .. "/other-ca.pem" }
      assert.are.same({ nil, "certificate verify failed" }, { res, err })
    end)
  end)

  it("ssl.wrap and dohandshake on a connected socket", function()
    local ssl = require "ssl"
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_HTTPS, DIR .. "/server.pem", DIR .. "/server.key")
    with_peer(peer, function()
      local tcp = assert(socket.connect("127.0.0.1", port))
      local conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "any", verify = "peer", cafile = CA }))
      assert.matches("^SSL connection: ", tostring(conn))
      assert.is_true(conn:sni("localhost"))
      assert.is_true(conn:dohandshake())
      assert.is_true((conn:getpeerverification()))
      assert.matches("^TLS", conn:info("protocol"))
      assert.are.equal(42.0, conn:send("GET /wrapped HTTP/1.1\r\nHost: localhost\r\n\r\n"))
      assert.are.equal("HTTP/1.1 200 OK", conn:receive())
      local rest = conn:receive("*a")
      assert.matches("secure /wrapped$", rest)
      conn:close()
    end)
  end)

  it("a server wraps an accepted socket, a client verifies it, both in tasks", support.in_task(function()
    local ssl = require "ssl"
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local serving = asyncio.create_task(function()
      local accepted = assert(server:accept())
      local conn = assert(ssl.wrap(accepted, { mode = "server", certificate = DIR .. "/server.pem",
        key = DIR .. "/server.key" }))
      assert(conn:dohandshake())
      local line = conn:receive()
      conn:send("echo " .. line .. "\n")
      conn:close()
    end)
    local conn = assert(ssl.wrap(assert(socket.connect("localhost", port)),
      { mode = "client", verify = "peer", cafile = CA }))
    conn:sni("localhost")
    assert.is_true(conn:dohandshake())
    assert.are.same({ 6.0, nil, nil }, { conn:send("hello\n") })
    assert.are.same({ "echo hello", nil, nil }, { conn:receive() })
    assert.are.same({ nil, "closed", "" }, { conn:receive() })
    await(serving)
    conn:close()
    server:close()
  end))
end)

describe("lua-sec's certificate objects and ALPN", function()
  local DIR = io.popen("mktemp -d"):read("l")
  assert(os.execute("tests/tls_certs.sh '" .. DIR .. "'"), "tests/tls_certs.sh failed")
  teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

  -- a python3 TLS server: the test CA's localhost certificate, ALPN h2 then http/1.1,
  -- client certificates asked for and checked; it says what it saw and closes
  local PY_TLS_PEER = [[
import asyncio, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1] + "/server.pem", sys.argv[1] + "/server.key")
ctx.load_verify_locations(sys.argv[1] + "/ca.pem")
ctx.verify_mode = ssl.CERT_OPTIONAL
ctx.set_alpn_protocols(["h2", "http/1.1"])
async def handle(r, w):
    try:
        obj = w.get_extra_info("ssl_object")
        peer = obj.getpeercert()
        cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else None
        w.write(("alpn=%s client=%s\n" % (obj.selected_alpn_protocol(), cn)).encode())
        await w.drain()
    except (ssl.SSLError, ConnectionError):
        pass
    finally:
        w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print("port", s.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
]]

  it("give what lua-sec under lua5.4 gives for the same exchange, call for call", function()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_TLS_PEER, DIR)
    with_peer(peer, same_as_reference, "tests/luasocket/ssl_exchange.lua", tostring(port), DIR)
  end)

  it("a certificate outlives its connection and the collector frees it", function()
    socket.install()
    local ssl = require "ssl"
    local pem = assert(io.open(DIR .. "/server.pem")):read("a")
    local cert = assert(ssl.loadcertificate(pem))
    local digest = cert:digest("sha256")
    for _ = 1, 1000 do assert(ssl.loadcertificate(pem)) end
    collectgarbage()
    assert.are.equal(digest, cert:digest("sha256"))
    assert.matches("bad argument #1 to 'validat' %(number expected", support.raises(function() return cert:validat("soon") end))
    assert.matches("bad argument #1 to 'pem' %(asyncio.x509 expected, got table%)", support.raises(function() return cert.pem({}) end))
  end)
end)

describe("lua-redis (Debian's, on the Lua 5.3 path) after install()", function()
  it("100 tasks each doing 100 INCR on a real redis-server give exactly 10,000", function()
    socket.install()
    package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
    local redis = require "redis"
    -- a free port: bound, then closed and given to redis-server
    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    local peer = start_peer("(Ready to accept connections)", "redis-server", "--port", tostring(port),
      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
    with_peer(peer, function()
      local first = redis.connect("127.0.0.1", tonumber(port))
      first:del("counter")
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = asyncio.create_task(function()
          local c = redis.connect("127.0.0.1", tonumber(port))
          for _ = 1, 100 do c:incr("counter") end
          c:quit()
        end)
      end
      await(asyncio.wait_for(asyncio.gather(table.unpack(tasks)), 60))
      assert.are.equal("10000", first:get("counter"))
      first:quit()
    end)
  end)
end)

describe("socket.smtp (Debian's lua-socket) after install()", function()
  local PY_SMTP = [[
import asyncio
from aiosmtpd.smtp import SMTP
class Handler:
    async def handle_DATA(self, server, session, envelope):
        body = envelope.content.decode().split("\r\n\r\n", 1)[1].strip()
        print("MAIL", envelope.mail_from, ",".join(envelope.rcpt_tos), body, flush=True)
        return "250 Message accepted for delivery"
async def main():
    loop = asyncio.get_running_loop()
    s = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    print("port", s.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
]]

  it("sends five messages from five tasks to aiosmtpd", function()
    socket.install()
    local smtp = require "socket.smtp"
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_SMTP)
    with_peer(peer, function()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = asyncio.create_task(function()
          return smtp.send {
            from = "<alua@example.org>", rcpt = { "<rcpt" .. i .. "@example.org>" },
            source = smtp.message { headers = { subject = "task " .. i }, body = "hello " .. i },
            server = "127.0.0.1", port = port,
          }
        end)
      end
      assert.are.same({ 1, 1, 1, 1, 1 }, { await(asyncio.gather(table.unpack(tasks))) })
      local seen = {}
      for _ = 1, 5 do
        local line = await(asyncio.wait_for(peer.stdout:readline(), 10))
        seen[#seen + 1] = line
      end
      table.sort(seen)
      for i = 1, 5 do
        assert.are.equal(("MAIL alua@example.org rcpt%d@example.org hello %d\n"):format(i, i), seen[i])
      end
    end)
  end)

  it("a refused connection is smtp.send's nil, \"connection refused\"", function()
    socket.install()
    local smtp = require "socket.smtp"
    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    assert.are.same({ nil, "connection refused" }, { smtp.send { from = "<a@b>", rcpt = "<c@d>",
      source = smtp.message { body = "x" }, server = "127.0.0.1", port = port } })
  end)
end)

describe("socket.ftp (Debian's lua-socket) after install()", function()
  local PY_FTP = [[
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.ERROR)
auth = DummyAuthorizer()
auth.add_user("alua", "secret", sys.argv[1], perm="elradfmw")
class Handler(FTPHandler):
    authorizer = auth
server = FTPServer(("127.0.0.1", 0), Handler)
print("port", server.socket.getsockname()[1], flush=True)
server.serve_forever(timeout=0.5)
]]

  it("puts and gets files from five tasks at once against pyftpdlib", function()
    socket.install()
    local ftp = require "socket.ftp"
    local dir = io.popen("mktemp -d"):read("l")
    local f = assert(io.open(dir .. "/shared.txt", "w"))
    f:write("shared contents\n")
    f:close()
    local peer, port = start_peer("^port (%d+)", PYTHON, "-c", PY_FTP, dir)
    with_peer(peer, function()
      local base = ("ftp://alua:secret@127.0.0.1:%d/"):format(port)
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = asyncio.create_task(function()
          local sent, err = ftp.put(base .. "up" .. i .. ".txt;type=i", "uploaded " .. i)
          assert(sent, err)
          local body, gerr = ftp.get(base .. "shared.txt;type=i")
          assert(body, gerr)
          return body
        end)
      end
      assert.are.same({ "shared contents\n", "shared contents\n", "shared contents\n", "shared contents\n",
        "shared contents\n" }, { await(asyncio.gather(table.unpack(tasks))) })
      for i = 1, 5 do
        local up = assert(io.open(dir .. "/up" .. i .. ".txt"))
        assert.are.equal("uploaded " .. i, up:read("a"))
        up:close()
      end
      assert.are.same({ nil, "550 No such file or directory." }, { ftp.get(base .. "missing.txt") })
    end)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

-- A finalizer that receives on a socket while a receive on it runs (a collection may run
-- at any allocation inside receive, and with it finalizers): it must not read the same
-- bytes again, lose any, or crash. The programs (tests/luasocket/finalizer_*.lua) make
-- every allocation run a whole collection with a finalizer always pending, which
-- receives while the main code is inside its own receive; every line or datagram sent
-- must arrive exactly once.
describe("a finalizer receiving on a socket during a receive on it", function()
  local function program(name)
    local f = assert(io.open("tests/luasocket/" .. name))
    local code = f:read("a")
    f:close()
    return code
  end

  it("UDP: receivefrom in the finalizer takes the next datagram (a double free before)", function()
    local out, status = support.run_alua_checked(program("finalizer_udp.lua"))
    assert.are.equal(0, status, out)
    assert.are.equal("finalizers received inside\nsent: 800, lost: 0, twice: 0\n", out)
  end)

  -- While the main code's receive runs, the finalizer's raises a clear error; while it
  -- waits for data (the finalizer then runs in another task's collection), the
  -- finalizer's receive takes what is there, or raises because a finalizer cannot wait
  -- (or because the main code's receive waits already: one reader at a time), leaving
  -- what it had taken in the buffer.
  it("TCP: close in the finalizer leaves the closed object's buffer empty; the receive ends closed", function()
    for _, pattern in ipairs { "5000", "*a", "*l" } do
      -- before: a count of 5000 refilled the buffer after a close at the 9th collection
      local out, status = support.run_alua_checked(program("finalizer_close.lua"), "PATTERN='" .. pattern .. "'")
      assert.are.equal(0, status, out)
      assert.are.equal("refilled after: none", out:match("^[^\n]*"), "pattern " .. pattern)
      assert.is_truthy(out:find("results: closed", 1, true), out)
    end
  end)

  it("TCP: receive in the finalizer is a clear error or takes the next bytes; every line arrives once", function()
    for _, pattern in ipairs { "*l", "20", "1000", "*a" } do
      -- before: "*l" and "*a" no such error, 20 lost 75 lines and doubled 75, 1000 crashed
      local out, status = support.run_alua_checked(program("finalizer_tcp.lua"), "PATTERN='" .. pattern .. "'")
      assert.are.equal(0, status, out)
      assert.are.equal("some raised the clear error\nno other error\n" ..
        "exactly once: 300, lost: 0, twice: 0\n", out, "pattern " .. pattern)
    end
  end)
end)
