-- luasocket_spec.lua — asyncio.socket, LuaSocket's API on alua: the same exchange run by
-- stock lua5.4 with the real LuaSocket and by alua gives the same results (receive
-- patterns, prefixes, partial results on timeout and close, send ranges, servers, select,
-- UDP, the helpers); and unchanged Debian libraries (socket.http) run many at once in
-- tasks against real peers (python3).

local support = require "tests.support"
local socket = require "asyncio.socket"

local ALUA = os.getenv("ALUA_BIN") or "build/bin/alua"

after_each(function()
  local left = support.cancel_leftovers()
  assert.are.equal(0, left, "tasks left over by the spec")
end)

local run, start_peer, stop_peer = support.run, support.start_peer, support.stop_peer

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]*") do out[#out + 1] = l end
  return out
end

describe("the same exchange under lua5.4 with LuaSocket and under alua", function()
  it("gives the same results, call for call", function()
    local peer, port = start_peer("^port (%d+)", ALUA, "tests/luasocket/peer.lua")
    local ok, err = pcall(function()
      local script = "tests/luasocket/exchange.lua"
      local ref = asyncio.create_task(run, "timeout", "60", "lua5.4", script, tostring(port))
      local install = 'require("asyncio.socket").install()'
      local ours = asyncio.create_task(run, "timeout", "60", ALUA, "-e", install, script, tostring(port))
      local rout, rerr, rstatus = await(ref)
      local aout, aerr, astatus = await(ours)
      assert.are.equal(0, rstatus, "lua5.4 with LuaSocket failed: " .. rerr)
      assert.are.equal(0, astatus, "alua failed: " .. aerr)
      assert.truthy(rout:find("\nend\n"), "the reference run did not finish: " .. rout)
      assert.are.same(lines(rout), lines(aout))
    end)
    stop_peer(peer)
    assert(ok, err)
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
    local peer, port = start_peer("^port (%d+)", "python3", "-c", PY_SLOW_HTTP, "0.2")
    local ok, err = pcall(function()
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
      assert.is_true(elapsed < 1, "took " .. elapsed .. " s")
    end)
    stop_peer(peer)
    assert(ok, err)
  end)

  it("outside a task a request runs the loop until it is done", function()
    local peer, port = start_peer("^port (%d+)", "python3", "-c", PY_SLOW_HTTP, "0")
    local ok, err = pcall(function()
      local out, errout, status = run("timeout", "60", ALUA, "-e", ([[
        require("asyncio.socket").install()
        local http = require "socket.http"
        print(http.request("http://127.0.0.1:%d/top"))]]):format(port))
      assert.are.equal(0, status, errout)
      assert.are.equal("/top\t200", out:match("^[^\t]*\t%d+"))
    end)
    stop_peer(peer)
    assert(ok, err)
  end)

  it("a refused connection is http.request's nil, \"connection refused\"", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    assert.are.same({ nil, "connection refused" }, { http.request("http://127.0.0.1:" .. port .. "/") })
  end)
end)

describe("asyncio.socket in tasks", function()
  it("a receive waiting in one task does not hold up others", support.in_task(function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local client = assert(socket.connect("127.0.0.1", port))
    local peer = assert(server:accept())
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
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local client = assert(socket.connect("127.0.0.1", port))
    local peer = assert(server:accept())
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

  it("settimeout(0) polls: receive gives nil, \"timeout\" until data is there", support.in_task(function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local client = assert(socket.connect("127.0.0.1", port))
    local peer = assert(server:accept())
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

  it("bad arguments raise errors that name the call", function()
    local t = socket.tcp()
    assert.matches("bad argument #1 to 'receive' %(invalid receive pattern%)", support.raises(t.receive, t, "*z"))
    assert.matches("bad argument #2 to 'connect' %(number expected", support.raises(t.connect, t, "127.0.0.1"))
    assert.matches("'setoption' %(unsupported option `nope'%)", support.raises(t.setoption, t, "nope", 1))
    assert.matches("tcp{server} expected, got tcp{master}", support.raises(t.accept, t))
    t:close()
  end)
end)
