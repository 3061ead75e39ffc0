-- udp_dns_spec.lua — UDP sockets (open_udp, sendto, recvfrom) on loopback and
-- getaddrinfo on libuv's resolver.

local support = require "tests.support"
local sleep, create_task, gather = asyncio.sleep, asyncio.create_task, asyncio.gather
local CancelledError, OSError = asyncio.CancelledError, asyncio.OSError

local opened = {}
local function open_udp(opts)
  local s = await(asyncio.open_udp(opts))
  opened[#opened + 1] = s
  return s
end

after_each(function()
  local left = support.cancel_leftovers()
  for _, x in ipairs(opened) do x:close() end
  opened = {}
  assert.are.equal(0, left, "tasks left over by the spec")
end)

local in_task = support.in_task

local raises = support.raises

local function bound()
  return open_udp { local_addr = { "127.0.0.1", 0 } }
end

-- Every wait for a datagram or a task is bounded: a datagram that never arrives fails
-- the spec with a TimeoutError instead of hanging the suite.
local WAIT = 10
local function recv(sock) return await(asyncio.wait_for(sock:recvfrom(), WAIT)) end
local function settle(t) return pcall(await, asyncio.wait_for(t, WAIT)) end

describe("open_udp", function()
  it("sendto and recvfrom between two sockets, with the sender's address", in_task(function()
    local a, b = bound(), bound()
    local ahost, aport = a:sockname()
    local bhost, bport = b:sockname()
    assert.are.equal("127.0.0.1", ahost)
    assert.is_true(aport > 0 and bport > 0 and aport ~= bport)
    a:sendto("ping", bhost, bport)
    local data, host, port = recv(b)
    assert.are.same({ "ping", "127.0.0.1", aport }, { data, host, port })
    b:sendto("pong", host, port)
    assert.are.equal("pong", (recv(a)))
  end))

  it("a port given as a numeric string is taken, as Lua's number coercion takes it", in_task(function()
    -- sendto's argument check (9a410d8) converted the port to test it but compared the
    -- string itself: "attempt to compare string with number" at a line of streams.lua
    local a, b = bound(), bound()
    local _, bport = b:sockname()
    a:sendto("by string", "127.0.0.1", tostring(bport))
    assert.are.equal("by string", (recv(b)))
    local err = tostring(raises(a.sendto, a, "x", "127.0.0.1", "70000"))
    assert.matches('sendto: port must be an integer in 1..65535, got string "70000"', err, 1, true)
    assert.is_nil(err:find("streams.lua", 1, true), err)
  end))

  it("data given as a number is sent as its text, as Lua's string coercion takes it", in_task(function()
    -- (9a410d8's check refused what udp_send's luaL_checklstring took before it)
    local a, b = bound(), bound()
    local _, bport = b:sockname()
    a:sendto(42, "127.0.0.1", bport)
    assert.are.equal("42", (recv(b)))
    assert.matches("sendto: data must be a string, got table", tostring(raises(a.sendto, a, {}, "127.0.0.1", bport)))
  end))

  it("datagrams keep their boundaries and order; empty and 60 KB datagrams", in_task(function()
    local a, b = bound(), bound()
    local _, bport = b:sockname()
    a:sendto("", "127.0.0.1", bport)
    local big = string.rep("B", 60000)
    a:sendto(big, "127.0.0.1", bport)
    for i = 1, 100 do a:sendto("n" .. i, "127.0.0.1", bport) end
    assert.are.equal("", (recv(b)))
    assert.are.equal(big, (recv(b)))
    for i = 1, 100 do assert.are.equal("n" .. i, (recv(b))) end
  end))

  -- the wait a recvfrom in a finalizer could not make left its future pending in the
  -- socket's one reader place: every recvfrom after it that had to wait got "another task
  -- is already waiting on this socket" until a datagram came (as streams did, 1119fbb)
  it("a recvfrom in a finalizer that cannot wait leaves the socket's recvfrom working", in_task(function()
    local a, b = bound(), bound()
    local in_finalizer
    setmetatable({}, { __gc = function()
      in_finalizer = select(2, pcall(function() return await(b:recvfrom()) end))
    end })
    collectgarbage() -- the finalizer runs inside this C call, where nothing can suspend
    assert.is_truthy(tostring(in_finalizer):find("cannot suspend here", 1, true), tostring(in_finalizer))
    local receiving = create_task(function() return await(b:recvfrom()) end)
    support.tick(3) -- it waits now
    a:sendto("hello", b:sockname())
    local ok, data = settle(receiving)
    assert.is_true(ok, tostring(data))
    assert.are.equal("hello", data)
  end))

  it("a socket opened with remote_addr sends there by default and knows its peer", in_task(function()
    local b = bound()
    local _, bport = b:sockname()
    local c = open_udp { remote_addr = { "127.0.0.1", bport } }
    assert.are.same({ "127.0.0.1", bport }, { c:peername() })
    c:sendto("to the remote")
    c:sendto("same address given", "127.0.0.1", bport)
    local data, _, port = recv(b)
    assert.are.equal("to the remote", data)
    assert.are.equal(select(2, c:sockname()), port)
    assert.are.equal("same address given", (recv(b)))
    b:sendto("reply", "127.0.0.1", port)
    assert.are.equal("reply", (recv(c)))
    local err = raises(c.sendto, c, "x", "127.0.0.1", bport + 1)
    assert.matches("connected to another address", tostring(err))
  end))

  -- localhost is ::1 first on Debian (its /etc/hosts names both): a and b are bound by
  -- name, so they get the same family, and sendto resolves localhost in a's family
  it("host names: localhost in sendto, names in local_addr and remote_addr", in_task(function()
    local b = open_udp { local_addr = { "localhost", 0 } }
    local _, bport = b:sockname()
    local a = open_udp { local_addr = { "localhost", 0 } }
    a:sendto("by name", "localhost", bport)
    assert.are.equal("by name", (recv(b)))
    local c = open_udp { remote_addr = { "localhost", bport } }
    c:sendto("resolved")
    assert.are.equal("resolved", (recv(b)))
    local err = raises(a.sendto, a, "x", "example.invalid", bport)
    assert.matches("not an IP address", tostring(err))
  end))

  it("sendto without an address on an unconnected socket is an error", in_task(function()
    local a = bound()
    assert.matches("no address", tostring(raises(a.sendto, a, "x")))
  end))

  it("a connected socket whose peer has no listener: recvfrom raises ConnectionError ECONNREFUSED",
    in_task(function()
      local gone = bound()
      local _, port = gone:sockname()
      gone:close()
      await(gone:wait_closed())
      local c = open_udp { remote_addr = { "127.0.0.1", port } }
      c:sendto("anyone?")
      local err = raises(await, asyncio.wait_for(c:recvfrom(), 5))
      assert.is_true(asyncio.ConnectionError:is(err), tostring(err))
      assert.are.equal("ECONNREFUSED", err.errno)
    end))

  it("cancelling a task blocked in recvfrom leaves the socket usable", in_task(function()
    local a, b = bound(), bound()
    local t = create_task(function() return await(b:recvfrom()) end)
    await(sleep(0.01))
    t:cancel()
    assert.is_true(CancelledError:is(select(2, settle(t))))
    a:sendto("after", "127.0.0.1", select(2, b:sockname()))
    assert.are.equal("after", (recv(b)))
  end))

  it("a second task waiting on the same socket is refused", in_task(function()
    local b = bound()
    local t = create_task(function() return await(b:recvfrom()) end)
    await(sleep(0.01))
    local err = raises(function() return await(b:recvfrom()) end)
    assert.matches("^[^:]*udp_dns_spec.lua:%d+: recvfrom: another task is already waiting on this socket", err)
    t:cancel()
    settle(t)
  end))

  it("a closed socket raises OSError EBADF; close wakes a blocked recvfrom", in_task(function()
    local b = bound()
    local t = create_task(function() return await(b:recvfrom()) end)
    await(sleep(0.01))
    b:close()
    b:close()
    local ok, err = settle(t)
    assert.is_false(ok)
    assert.are.equal("EBADF", err.errno)
    assert.is_true(b:is_closing())
    err = raises(b.sendto, b, "x", "127.0.0.1", 9)
    assert.is_true(OSError:is(err))
    assert.are.equal("EBADF", err.errno)
    await(b:wait_closed())
    assert.is_nil(b:sockname())
  end))

  it("reuse_port lets two sockets bind one port", in_task(function()
    local a = open_udp { local_addr = { "127.0.0.1", 0 }, reuse_port = true }
    local _, port = a:sockname()
    local b = open_udp { local_addr = { "127.0.0.1", port }, reuse_port = true }
    assert.are.equal(port, select(2, b:sockname()))
    local err = raises(await, asyncio.open_udp { local_addr = { "127.0.0.1", port } })
    assert.are.equal("EADDRINUSE", err.errno)
  end))

  it("IPv6 loopback when the machine has it", in_task(function()
    local ok, b = pcall(open_udp, { local_addr = { "::1", 0 } })
    if not ok then return end -- no IPv6 here
    local a = open_udp { family = "inet6" }
    a:sendto("six", "::1", select(2, b:sockname()))
    local data, host = recv(b)
    assert.are.same({ "six", "::1" }, { data, host })
  end))

  it("a slow reader: the queue is bounded and the socket keeps working", in_task(function()
    local a, b = bound(), bound()
    local _, bport = b:sockname()
    local payload = string.rep("p", 1000)
    for _ = 1, 3000 do
      pcall(a.sendto, a, payload, "127.0.0.1", bport)
      if _ % 100 == 0 then await(sleep(0)) end
    end
    local n = 0
    while true do
      local ok = pcall(await, asyncio.wait_for(b:recvfrom(), 0.2))
      if not ok then break end
      n = n + 1
    end
    assert.is_true(n > 0 and n <= 3000, "received " .. n)
    a:sendto("last", "127.0.0.1", bport)
    assert.are.equal("last", (recv(b)))
  end))
end)

describe("getaddrinfo", function()
  it("resolves localhost", in_task(function()
    local list = await(asyncio.getaddrinfo("localhost", 80))
    assert.is_true(#list >= 1)
    local seen = false
    for _, ai in ipairs(list) do
      assert.is_true(ai.family == "inet" or ai.family == "inet6")
      assert.are.equal(80, ai.port)
      if ai.address == "127.0.0.1" or ai.address == "::1" then seen = true end
    end
    assert.is_true(seen, "localhost is a loopback address")
  end))

  it("filters by family; numeric hosts; passive wildcard addresses", in_task(function()
    for _, ai in ipairs(await(asyncio.getaddrinfo("localhost", nil, { family = "inet" }))) do
      assert.are.equal("inet", ai.family)
      assert.are.equal(0, ai.port)
    end
    local list = await(asyncio.getaddrinfo("127.0.0.1", 5353, { type = "dgram" }))
    assert.are.same({ { family = "inet", address = "127.0.0.1", port = 5353 } }, list)
    local any = {}
    for _, ai in ipairs(await(asyncio.getaddrinfo(nil, 8080, { passive = true }))) do any[ai.address] = ai.port end
    assert.are.equal(8080, any["0.0.0.0"] or any["::"])
  end))

  it("an unknown host is an OSError naming the host", in_task(function()
    local err = raises(await, asyncio.wait_for(asyncio.getaddrinfo("nosuch-host.invalid", 80), 20))
    assert.is_true(OSError:is(err), tostring(err))
    assert.matches("^EAI_", err.errno)
    assert.are.equal("getaddrinfo", err.syscall)
    assert.matches("nosuch-host.invalid", err.message, 1, true)
    err = raises(await, asyncio.wait_for(asyncio.open_connection("nosuch-host.invalid", 80), 20))
    assert.matches("nosuch-host.invalid", err.message, 1, true)
  end))

  it("bad options are errors", in_task(function()
    assert.matches("unknown family", tostring(raises(await, asyncio.getaddrinfo("localhost", 1, { family = "x" }))))
    assert.matches("unknown type", tostring(raises(await, asyncio.getaddrinfo("localhost", 1, { type = "raw" }))))
    assert.matches("host must be a string", tostring(raises(await, asyncio.getaddrinfo(42, 1))))
  end))

  it("many lookups at once; cancelling one does not disturb the others", in_task(function()
    local tasks = {}
    for i = 1, 20 do tasks[i] = create_task(function() return await(asyncio.getaddrinfo("localhost", i)) end) end
    tasks[5]:cancel()
    tasks[21] = { return_exceptions = true }
    local res = { await(gather(table.unpack(tasks))) }
    for i = 1, 20 do
      if i == 5 then
        assert.is_true(CancelledError:is(res[i]) or type(res[i]) == "table")
      else
        assert.are.equal(i, res[i][1].port)
      end
    end
  end))
end)

describe("getaddrinfo requests and the end of the program", function()
  local run = support.run_with_held_pool

  it("a lookup cancelled while queued ends with its task; nothing is left behind", function()
    local out, status = run([[
      local lookup = asyncio.create_task(asyncio.getaddrinfo("localhost", 80))
      await(asyncio.sleep(0.05))
      lookup:cancel()
      local ok, err = pcall(await, lookup)
      print("lookup", ok, asyncio.CancelledError:is(err))
      release()
      await(await(held):close())
      print("done")
    ]])
    assert.are.equal("lookup\tfalse\ttrue\ndone\n", out)
    assert.are.equal(0, status)
  end)

  it("the state closes with a lookup queued: cancelled, freed, no leak", function()
    local out, status = run([[
      local lookup = asyncio.create_task(asyncio.getaddrinfo("localhost", 80))
      await(asyncio.sleep(0.05))
      release(0.3)
      print("closing")
      os.exit(0, true)
    ]])
    assert.are.equal("closing\n", out)
    assert.are.equal(0, status)
  end)

  it("the state closes with a lookup collected while queued", function()
    local out, status = run([[
      local lookup = asyncio.create_task(asyncio.getaddrinfo("localhost", 80))
      await(asyncio.sleep(0.05))
      lookup:cancel()
      pcall(await, lookup)
      lookup = nil
      collectgarbage()
      collectgarbage()
      release(0.3)
      print("closing")
      os.exit(0, true)
    ]])
    assert.are.equal("closing\n", out)
    assert.are.equal(0, status)
  end)
end)
