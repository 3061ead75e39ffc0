-- tls_spec.lua — TLS streams (the ssl option) on loopback sockets, with a CA and
-- certificates the openssl command makes at test time (tests/tls_certs.sh): alua client
-- and server, certificate and host name checks with OpenSSL's reasons, peers that speak
-- plain TCP, send garbage or vanish, cancellation mid-handshake, flow control, and real
-- peers: openssl s_server / s_client, curl, python3's ssl module.

local support = require "tests.support"
local it = support.bounded_it(it) -- every body waits on peers: bounded, in a task
local sleep, create_task, gather = asyncio.sleep, asyncio.create_task, asyncio.gather
local SSLError, OSError, CancelledError, TimeoutError = asyncio.SSLError, asyncio.OSError,
  asyncio.CancelledError, asyncio.TimeoutError
local PIPE = asyncio.PIPE

local VALGRIND = (os.getenv("ALUA_RUNNER") or ""):find("valgrind") ~= nil
local ASAN = io.open("/proc/self/maps"):read("a"):find("libasan") ~= nil -- frees are quarantined
local MiB = 1024 * 1024

local DIR = io.popen("mktemp -d"):read("l")
assert(os.execute("tests/tls_certs.sh '" .. DIR .. "'"), "tests/tls_certs.sh failed")
local function file(name) return DIR .. "/" .. name end
local CA = file("ca.pem")
local SERVER = { certfile = file("server.pem"), keyfile = file("server.key") }

teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

-- Servers and client writers a spec opens are closed after it, even when it fails.
local opened = {}
local function tracked(fn) return support.tracked(opened, fn) end
local open_connection, start_server = tracked(asyncio.open_connection), tracked(asyncio.start_server)

after_each(function()
  local left = support.cancel_leftovers()
  for _, x in ipairs(opened) do x:close() end
  opened = {}
  assert.are.equal(0, left, "tasks left over by the spec")
end)

local raises = support.raises

local function server_with(fn, opts)
  local server = await(start_server(fn, "127.0.0.1", 0, opts))
  return server, (select(2, server:sockname()))
end

local function echo(r, w)
  while true do
    local data = await(r:read(65536))
    if data == "" then break end
    w:write(data)
    await(w:drain())
  end
  w:close()
end

local function tls_echo_server(ssl, extra)
  local opts = { ssl = ssl or SERVER }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return server_with(echo, opts)
end

local function close_server(server)
  server:close()
  await(asyncio.wait_for(server:wait_closed(), 5))
end

-- A payload whose every 64 KiB block differs, so a lost or repeated block shows.
local function payload(size)
  local rnd = {}
  for i = 1, 4096 do rnd[i] = string.char(math.random(0, 255)) end
  local block = table.concat(rnd):rep(16)
  local parts = {}
  for i = 1, size // #block do parts[i] = string.format("%08d", i) .. block:sub(9) end
  return table.concat(parts)
end

-- Expects the TLS client connection to fail: returns the SSLError.
local function ssl_fails(port, ssl, host)
  local err = raises(await, open_connection(host or "127.0.0.1", port, { ssl = ssl }))
  assert.is_true(SSLError:is(err), tostring(err))
  return err
end

local run, start_peer, stop_peer = support.run, support.start_peer, support.stop_peer

-- python3 as a TLS server: prints its port, answers one connection with `reply`, then
-- closes the socket without close_notify (a "ragged" end).
local PY_RAGGED = [[
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
print("port", ls.getsockname()[1], flush=True)
c, _ = ls.accept()
s = ctx.wrap_socket(c, server_side=True)
s.recv(100)
s.sendall(b"partial answer")
s.close()
]]

-- python3 as a TLS client of an alua server: verifies it, sends a line, prints the answer.
local PY_CLIENT = [[
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello from python\n")
        data = b""
        while not data.endswith(b"\n"):
            data += s.recv(100)
        print(s.version(), data.decode().strip())
]]

describe("TLS between an alua client and an alua server", function()
  it("round-trips lines; get_extra_info('ssl') on both ends", function()
    local info
    local server, port = server_with(function(r, w)
      info = w:get_extra_info("ssl")
      echo(r, w)
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    for i = 1, 20 do
      w:write("line " .. i .. "\n")
      assert.are.equal("line " .. i .. "\n", await(r:readline()))
    end
    local ssl = w:get_extra_info("ssl")
    assert.matches("^TLSv1%.[23]$", ssl.version)
    assert.is_string(ssl.cipher)
    assert.is_true(ssl.bits >= 128)
    assert.are.equal("CN=localhost", ssl.peer_subject)
    assert.are.equal("CN=alua test CA", ssl.peer_issuer)
    assert.is_true(ssl.verified)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", w:get_extra_info("peercert"))
    assert.are.equal("localhost", info.server_name) -- SNI, as the server saw it
    assert.is_nil(info.peer_subject)                -- no client certificate
    assert.is_false(info.verified)
    w:close()
    await(w:wait_closed())
    close_server(server)
  end)

  it("a plain stream has no ssl info", function()
    local server, port = server_with(echo)
    local _, w = await(open_connection("127.0.0.1", port))
    assert.is_nil(w:get_extra_info("ssl"))
    assert.are.equal("none", w:get_extra_info("ssl", "none"))
    assert.is_nil(w:get_extra_info("peercert"))
    w:close()
    close_server(server)
  end)

  it("echoes a 16 MiB payload byte for byte", function()
    local size = VALGRIND and 2 * MiB or 16 * MiB
    local data = payload(size)
    local server, port = tls_echo_server()
    local r, w = await(open_connection("127.0.0.1", port, { ssl = { cafile = CA } }))
    local reader = create_task(function() return await(r:readexactly(size)) end)
    for i = 1, size, MiB do
      w:write(data:sub(i, i + MiB - 1))
      await(w:drain())
    end
    local got = await(reader)
    assert.are.equal(#data, #got)
    assert.is_true(got == data, "the echoed payload differs")
    w:write_eof()
    assert.are.equal("", await(r:read()))
    w:close()
    close_server(server)
  end)

  it("one large write: the reader gets it all, read() to the end", function()
    local size = VALGRIND and MiB or 8 * MiB
    local data = payload(size)
    local server, port = server_with(function(_, w)
      w:write(data)
      await(w:drain())
      w:close()
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    local got = await(r:read())
    assert.is_true(got == data, "got " .. #got .. " bytes of " .. #data)
    assert.is_true(r:at_eof())
    w:close()
    close_server(server)
  end)

  it("readline, readuntil, readexactly and lines over records that split them", function()
    local server, port = server_with(function(_, w)
      for _, piece in ipairs { "fir", "st\nsec", "ond\r\n", "a;b", ";", "0123", "456789", "x\ny\nlast" } do
        w:write(piece)
        await(w:drain())
        await(sleep(0.005))
      end
      w:close()
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    assert.are.equal("first\n", await(r:readline()))
    assert.are.equal("second\r\n", await(r:readline()))
    assert.are.equal("a;", await(r:readuntil(";")))
    assert.are.equal("b;", await(r:readuntil(";")))
    assert.are.equal("0123456789", await(r:readexactly(10)))
    local lines = {}
    for line in r:lines() do lines[#lines + 1] = line end
    assert.are.same({ "x", "y", "last" }, lines)
    assert.is_true(r:at_eof())
    w:close()
    close_server(server)
  end)

  it("readexactly past the end: IncompleteReadError; a line over the limit: LimitOverrunError", function()
    local server, port = server_with(function(r, w)
      w:write(await(r:readline()) == "long\n" and string.rep("z", 100) .. "\n" or "short")
      w:close()
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    w:write("short\n")
    local err = raises(await, r:readexactly(10))
    assert.are.equal("IncompleteReadError", err.type)
    assert.are.equal("short", err.partial)
    w:close()
    r, w = await(open_connection("localhost", port, { ssl = { cafile = CA }, limit = 32 }))
    w:write("long\n")
    err = raises(await, r:readline())
    assert.are.equal("LimitOverrunError", err.type)
    w:close()
    close_server(server)
  end)

  it("drain waits for a reader that is slow, then completes", function()
    local size = 8 * MiB -- more than loopback's socket buffers take
    local drained, buffered = false, 0
    local server, port = server_with(function(_, w)
      w:write(string.rep("d", size))
      buffered = w:get_write_buffer_size()
      await(w:drain())
      drained = true
      w:close()
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    await(sleep(0.2))
    assert.is_true(buffered > 64 * 1024, "buffered " .. buffered)
    assert.is_false(drained)
    local n = 0
    while true do
      local chunk = await(r:read(1 << 20))
      if chunk == "" then break end
      n = n + #chunk
    end
    assert.are.equal(size, n)
    assert.is_true(drained)
    w:close()
    close_server(server)
  end)

  it("write_eof sends close_notify: the server reads to the end and still answers", function()
    local server, port = server_with(function(r, w)
      local request = await(r:read())
      w:write("got " .. #request .. " bytes")
      w:close()
    end, { ssl = SERVER })
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    assert.is_true(w:can_write_eof())
    w:write(string.rep("q", 1000))
    w:write_eof()
    assert.are.equal("got 1000 bytes", await(r:read()))
    w:close()
    close_server(server)
  end)

  it("serves many clients at once", function()
    local server, port = tls_echo_server()
    local n = VALGRIND and 8 or 50
    local tasks = {}
    for i = 1, n do
      tasks[i] = create_task(function()
        local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
        w:write("client " .. i .. "\n")
        local line = await(r:readline())
        w:close()
        return line
      end)
    end
    local lines = { await(gather(table.unpack(tasks))) }
    for i = 1, n do assert.are.equal("client " .. i .. "\n", lines[i]) end
    close_server(server)
  end)

  it("works over Unix sockets (server_hostname names the server)", function()
    local path = DIR .. "/tls.sock"
    local server = await(asyncio.start_unix_server(echo, path, { ssl = SERVER }))
    opened[#opened + 1] = server
    local err = raises(await, asyncio.open_unix_connection(path, { ssl = { cafile = CA } }))
    assert.matches("server_hostname", tostring(err))
    local r, w = await(asyncio.open_unix_connection(path, { ssl = { cafile = CA, server_hostname = "localhost" } }))
    w:write("over a unix socket\n")
    assert.are.equal("over a unix socket\n", await(r:readline()))
    assert.are.equal("CN=localhost", w:get_extra_info("ssl").peer_subject)
    w:close()
    close_server(server)
  end)

  it("mutual TLS: a server with cafile wants a client certificate", function()
    local subject
    local errors = {}
    local server, port = server_with(function(r, w)
      subject = w:get_extra_info("ssl").peer_subject
      echo(r, w)
    end, { ssl = { certfile = SERVER.certfile, keyfile = SERVER.keyfile, cafile = CA,
      on_handshake_error = function(e) errors[#errors + 1] = e end } })
    local client = { cafile = CA, certfile = file("client.pem"), keyfile = file("client.key") }
    local r, w = await(open_connection("localhost", port, { ssl = client }))
    w:write("with a certificate\n")
    assert.are.equal("with a certificate\n", await(r:readline()))
    assert.are.equal("CN=alua client", subject)
    w:close()
    -- without one: TLS 1.3 lets the client finish first, so the refusal may come on the read
    local ok, err = pcall(function()
      local r2, w2 = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
      w2:write("no certificate\n")
      return await(r2:readline())
    end)
    assert.is_false(ok)
    assert.is_true(SSLError:is(err), tostring(err))
    assert.matches("certificate required", err.message)
    for _ = 1, 100 do
      if #errors > 0 then break end
      await(sleep(0.01))
    end
    assert.are.equal(1, #errors)
    assert.matches("peer did not return a certificate", errors[1].message)
    close_server(server)
  end)
end)

describe("certificate checks", function()
  it("the wrong CA: SSLError naming the verify error", function()
    local server, port = tls_echo_server()
    local err = ssl_fails(port, { cafile = file("other-ca.pem") }, "localhost")
    assert.matches("certificate verify failed: unable to get local issuer certificate", err.message, 1, true)
    assert.are.equal(20, err.verify_code)
    assert.are.equal("unable to get local issuer certificate", err.verify_message)
    assert.are.equal("certificate verify failed", err.reason)
    assert.matches("(connecting to 127.0.0.1 port " .. port .. ")", err.message, 1, true)
    close_server(server)
  end)

  it("ssl = true trusts the system CA store, which does not know the test CA", function()
    local server, port = tls_echo_server()
    local err = ssl_fails(port, true, "localhost")
    assert.matches("certificate verify failed: unable to get local issuer certificate", err.message, 1, true)
    close_server(server)
  end)

  it("a host name the certificate does not name fails", function()
    local server, port = tls_echo_server()
    local err = ssl_fails(port, { cafile = CA, server_hostname = "example.com" })
    assert.matches("certificate verify failed: hostname mismatch", err.message, 1, true)
    assert.are.equal(62, err.verify_code)
    close_server(server)
  end)

  it("an IP address the certificate does not name fails; its DNS name works", function()
    local server, port = tls_echo_server { certfile = file("dnsonly.pem"), keyfile = file("dnsonly.key") }
    local err = ssl_fails(port, { cafile = CA }, "127.0.0.1")
    assert.matches("certificate verify failed: IP address mismatch", err.message, 1, true)
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    w:write("by name\n")
    assert.are.equal("by name\n", await(r:readline()))
    w:close()
    close_server(server)
  end)

  it("an expired certificate fails", function()
    local server, port = tls_echo_server { certfile = file("expired.pem"), keyfile = file("expired.key") }
    local err = ssl_fails(port, { cafile = CA }, "localhost")
    assert.matches("certificate verify failed: certificate has expired", err.message, 1, true)
    assert.are.equal(10, err.verify_code)
    close_server(server)
  end)

  it("a self-signed certificate fails, and verify = false accepts it", function()
    local server, port = tls_echo_server { certfile = file("self.pem"), keyfile = file("self.key") }
    local err = ssl_fails(port, true, "localhost")
    assert.matches("certificate verify failed: self-signed certificate", err.message, 1, true)
    local r, w = await(open_connection("localhost", port, { ssl = { verify = false } }))
    w:write("unverified\n")
    assert.are.equal("unverified\n", await(r:readline()))
    local info = w:get_extra_info("ssl")
    assert.is_false(info.verified)
    assert.are.equal("CN=localhost", info.peer_subject)
    w:close()
    close_server(server)
  end)
end)

describe("peers that do not speak TLS", function()
  it("a plain TCP client: the server hears why, closes it, and keeps serving", function()
    local errors = {}
    local ssl = { certfile = SERVER.certfile, keyfile = SERVER.keyfile,
      on_handshake_error = function(e) errors[#errors + 1] = e end }
    local server, port = server_with(echo, { ssl = ssl })
    local r, w = await(open_connection("127.0.0.1", port))
    w:write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    local ok = pcall(function() return await(r:read()) end) -- the end, or ECONNRESET
    assert.is_true(ok or true)
    w:close()
    for _ = 1, 100 do
      if #errors > 0 then break end
      await(sleep(0.01))
    end
    assert.are.equal(1, #errors)
    assert.is_true(SSLError:is(errors[1]), tostring(errors[1]))
    assert.matches("http request", errors[1].message)
    assert.matches("client 127.0.0.1 port", errors[1].message)
    -- still serving
    local r2, w2 = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    w2:write("after\n")
    assert.are.equal("after\n", await(r2:readline()))
    w2:close()
    close_server(server)
  end)

  it("a plain server answering garbage: SSLError with OpenSSL's reason", function()
    local server, port = server_with(function(_, w)
      w:write("HTTP/1.0 400 Bad Request\r\n\r\nnot TLS at all\n")
      w:close()
    end)
    local err = ssl_fails(port, { cafile = CA }, "localhost")
    assert.is_string(err.reason)
    assert.matches("^handshake: ", err.message)
    close_server(server)
  end)

  it("a server that vanishes mid-handshake: SSLError 'unexpected eof while reading'", function()
    local server, port = server_with(function(r, w)
      await(r:read(10)) -- part of the client hello
      w:close()
    end)
    local err = ssl_fails(port, { cafile = CA }, "localhost")
    assert.matches("unexpected eof while reading", err.message)
    close_server(server)
  end)

  it("a client that vanishes mid-handshake: the server hears of it", function()
    local errors = {}
    local server, port = server_with(echo, { ssl = { certfile = SERVER.certfile, keyfile = SERVER.keyfile,
      on_handshake_error = function(e) errors[#errors + 1] = e end } })
    local _, w = await(open_connection("127.0.0.1", port))
    w:write("\22\3\1\0\200") -- the start of a handshake record, then nothing
    await(sleep(0.05))
    w:close()
    for _ = 1, 100 do
      if #errors > 0 then break end
      await(sleep(0.01))
    end
    assert.are.equal(1, #errors)
    assert.matches("unexpected eof while reading", errors[1].message)
    close_server(server)
  end)

  it("a silent server: TimeoutError after ssl_handshake_timeout", function()
    local server, port = server_with(function(r, w)
      await(r:read())
      w:close()
    end)
    local t0 = asyncio.get_running_loop():time()
    local err = raises(await, open_connection("127.0.0.1", port, { ssl = { cafile = CA }, ssl_handshake_timeout = 0.2 }))
    assert.is_true(TimeoutError:is(err), tostring(err))
    assert.matches("no TLS handshake within 0.2 seconds", err.message)
    assert.is_true(asyncio.get_running_loop():time() - t0 >= 0.19)
    close_server(server)
  end)

  it("a silent client: the server gives up after its ssl_handshake_timeout", function()
    local errors = {}
    local server, port = server_with(echo, { ssl_handshake_timeout = 0.1, ssl = { certfile = SERVER.certfile,
      keyfile = SERVER.keyfile, on_handshake_error = function(e) errors[#errors + 1] = e end } })
    local r, w = await(open_connection("127.0.0.1", port))
    assert.are.equal("", await(asyncio.wait_for(r:read(), 5))) -- the server closed it
    assert.are.equal(1, #errors)
    assert.is_true(TimeoutError:is(errors[1]))
    w:close()
    close_server(server)
  end)

  it("a client whose peer ends without close_notify: SSLError, unless suppress_ragged_eofs", function()
    for _, suppress in ipairs { false, true } do
      local py, port = start_peer("^port (%d+)", "python3", "-c", PY_RAGGED, SERVER.certfile, SERVER.keyfile)
      local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA, suppress_ragged_eofs = suppress } }))
      w:write("hi")
      assert.are.equal("partial answer", await(r:readexactly(14)))
      if suppress then
        assert.are.equal("", await(r:read()))
      else
        local err = raises(await, r:read())
        assert.is_true(SSLError:is(err), tostring(err))
        assert.matches("read: unexpected eof while reading", err.message)
      end
      w:close()
      stop_peer(py)
    end
  end)

  it("a server reads a client's end without close_notify as the end, unless told not to", function()
    local PY_CUT = [[
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"cut short")
s.recv(10)
s.close()
]]
    for _, suppress in ipairs { "default", false } do
      local seen = asyncio.Future()
      local ssl = { certfile = SERVER.certfile, keyfile = SERVER.keyfile }
      if suppress ~= "default" then ssl.suppress_ragged_eofs = suppress end
      local server, port = server_with(function(r, w)
        w:write("ok")
        seen:set_result(pcall(function() return await(r:read()) end))
        w:close()
      end, { ssl = ssl })
      local _, err, status = run("python3", "-c", PY_CUT, CA, tostring(port))
      assert.are.equal(0, status, err)
      local ok, got = await(asyncio.wait_for(seen, 5))
      if suppress == "default" then
        assert.is_true(ok, tostring(got))
        assert.are.equal("cut short", got)
      else
        assert.is_false(ok)
        assert.matches("read: unexpected eof while reading", tostring(got))
      end
      close_server(server)
    end
  end)

  it("a record altered on the way: SSLError from the read that meets it, an alert to the peer", function()
    local server_saw
    local server, port = server_with(function(r, w)
      await(r:readline())
      w:write(string.rep("s", 5000))
      await(w:drain())
      local _, err = pcall(function() return await(r:read()) end) -- the client's alert
      server_saw = err
      w:close()
    end, { ssl = SERVER })
    -- a TCP relay that flips one bit in the server's stream once the handshake is over
    local relay, relay_port = server_with(function(cr, cw)
      local sr, sw = await(asyncio.open_connection("127.0.0.1", port))
      local up = create_task(function()
        pcall(function()
          while true do
            local data = await(cr:read(65536))
            if data == "" then break end
            sw:write(data)
          end
        end)
        sw:close()
      end)
      local seen = 0
      pcall(function()
        while true do
          local data = await(sr:read(65536))
          if data == "" then break end
          if seen < 4000 and seen + #data > 4000 then -- inside the application data
            local i = 4000 - seen + 1
            data = data:sub(1, i - 1) .. string.char(data:byte(i) ~ 1) .. data:sub(i + 1)
          end
          seen = seen + #data
          cw:write(data)
        end
      end)
      cw:close()
      await(up)
    end)
    local r, w = await(open_connection("localhost", relay_port, { ssl = { cafile = CA } }))
    w:write("go\n")
    local err = raises(await, r:readexactly(5000))
    assert.is_true(SSLError:is(err), tostring(err))
    assert.matches("^readexactly: ", err.message)
    assert.is_string(err.reason)
    -- the stream keeps its error
    assert.are.equal(err.message, (raises(await, r:read()).message:gsub("^read", "readexactly")))
    w:close()
    for _ = 1, 100 do
      if server_saw then break end
      await(sleep(0.01))
    end
    assert.matches("^read: .*alert bad record mac", tostring(server_saw and server_saw.message))
    close_server(relay)
    close_server(server)
  end)
end)

describe("cancellation", function()
  it("cancelling a client mid-handshake closes its socket and leaves nothing behind", function()
    local ended = asyncio.Future()
    local server, port = server_with(function(r)
      local data = await(r:read()) -- the client hello, then the end when the client closes
      ended:set_result(#data)
    end)
    local task = create_task(function()
      return await(open_connection("127.0.0.1", port, { ssl = { cafile = CA } }))
    end)
    await(sleep(0.05))
    task:cancel()
    local err = raises(await, task)
    assert.is_true(CancelledError:is(err))
    assert.is_true(await(asyncio.wait_for(ended, 5)) > 0)
    collectgarbage()
    await(sleep(0.01))
    close_server(server)
  end)

  it("cancelling a server's connection mid-handshake closes it", function()
    local server, port = server_with(echo, { ssl = SERVER })
    local before = {} -- this spec's own task and its time limit's
    for _, t in ipairs(asyncio.all_tasks()) do before[t] = true end
    local r, w = await(open_connection("127.0.0.1", port))
    await(sleep(0.05))
    local conns = {}
    for _, t in ipairs(asyncio.all_tasks()) do
      if not before[t] then conns[#conns + 1] = t end
    end
    assert.are.equal(1, #conns) -- the connection's, in its handshake
    conns[1]:cancel()
    assert.are.equal("", await(asyncio.wait_for(r:read(), 5)))
    w:close()
    close_server(server)
  end)

  it("a task cancelled while reading a TLS stream; the stream closes cleanly", function()
    local server, port = tls_echo_server()
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    local reader = create_task(function() return await(r:readline()) end)
    await(sleep(0.02))
    reader:cancel()
    assert.is_true(CancelledError:is(raises(await, reader)))
    w:write("still works\n")
    assert.are.equal("still works\n", await(r:readline()))
    w:close()
    await(w:wait_closed())
    close_server(server)
  end)
end)

describe("the ssl option", function()
  it("refuses wrong values clearly", function()
    local function msg(...) return tostring(raises(await, open_connection("127.0.0.1", 1, ...))) end
    assert.matches("option 'ssl' must be a boolean or a table, got string", msg { ssl = "yes" })
    assert.matches("ssl: unknown option 'cafle' %(did you mean 'cafile'%?%)", msg { ssl = { cafle = CA } })
    assert.matches("ssl: option 'verify' must be a boolean, got string", msg { ssl = { verify = "no" } })
    assert.matches("ssl_handshake_timeout must be a positive number", msg { ssl = true, ssl_handshake_timeout = 0 })
    local err = raises(await, start_server(echo, "127.0.0.1", 0, { ssl = true }))
    assert.matches("needs ssl.certfile", tostring(err))
  end)

  it("a missing certificate file: OSError ENOENT naming it", function()
    local err = raises(await, start_server(echo, "127.0.0.1", 0, { ssl = { certfile = DIR .. "/nope.pem" } }))
    assert.is_true(OSError:is(err), tostring(err))
    assert.are.equal("ENOENT", err.errno)
    assert.matches("certfile '" .. DIR .. "/nope.pem'", err.message, 1, true)
    err = raises(await, open_connection("127.0.0.1", 1, { ssl = { cafile = DIR .. "/nope.pem" } }))
    assert.are.equal("ENOENT", err.errno)
  end)

  it("an encrypted key: loaded with its password, refused without (never prompted for)", function()
    local enc = { certfile = SERVER.certfile, keyfile = file("server-enc.key") }
    local err = raises(await, start_server(echo, "127.0.0.1", 0, { ssl = enc }))
    assert.is_true(SSLError:is(err), tostring(err))
    assert.matches("keyfile '.*server%-enc.key': bad decrypt %(an encrypted key needs ssl.password%)", err.message)
    enc.password = "wrong"
    assert.is_true(SSLError:is(raises(await, start_server(echo, "127.0.0.1", 0, { ssl = enc }))))
    enc.password = "alua"
    local server, port = tls_echo_server(enc)
    local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
    w:write("encrypted key\n")
    assert.are.equal("encrypted key\n", await(r:readline()))
    w:close()
    close_server(server)
  end)

  it("a file that is no certificate, a key that does not match: SSLError", function()
    local err = raises(await, start_server(echo, "127.0.0.1", 0, { ssl = { certfile = file("ext.cnf") } }))
    assert.is_true(SSLError:is(err), tostring(err))
    assert.matches("certfile '.*ext.cnf': ", err.message)
    err = raises(await, start_server(echo, "127.0.0.1", 0, { ssl = { certfile = SERVER.certfile, keyfile = file("self.key") } }))
    assert.is_true(SSLError:is(err), tostring(err))
    assert.matches("keyfile '.*self.key': key values mismatch", err.message)
  end)
end)

describe("real peers", function()
  it("an alua client against openssl s_server (TLS 1.3, and 1.2)", function()
    for _, version in ipairs { "-tls1_3", "-tls1_2" } do
      local p, port = start_peer("^ACCEPT .*:(%d+)", "openssl", "s_server", "-accept", "127.0.0.1:0",
        "-cert", SERVER.certfile, "-key", SERVER.keyfile, "-www", "-naccept", "1", version)
      local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
      w:write("GET / HTTP/1.0\r\n\r\n")
      local page = await(r:read())
      assert.matches("^HTTP/1.0 200 ok", page)
      assert.matches("Ciphers supported in s_server binary", page, 1, true)
      assert.are.equal(version == "-tls1_3" and "TLSv1.3" or "TLSv1.2", w:get_extra_info("ssl").version)
      w:close()
      stop_peer(p)
    end
  end)

  it("openssl s_client against an alua server", function()
    local server, port = server_with(function(r, w)
      local line = await(r:readline())
      w:write("alua heard: " .. line)
      await(w:drain())
      w:close()
    end, { ssl = SERVER })
    local p = await(asyncio.create_subprocess_exec("openssl", "s_client", "-connect", "127.0.0.1:" .. port,
      "-CAfile", CA, "-verify_return_error", "-servername", "localhost", "-verify_hostname", "localhost",
      "-quiet", { stdin = PIPE, stdout = PIPE, stderr = PIPE }))
    local out, err = await(p:communicate("hello from s_client\n"))
    assert.are.equal(0, p.returncode, err)
    assert.are.equal("alua heard: hello from s_client\n", out)
    close_server(server)
  end)

  it("curl --cacert against an alua HTTPS server", function()
    local server, port = server_with(function(r, w)
      while await(r:readline()) ~= "\r\n" do end
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello, curl\n")
      await(w:drain())
      w:close()
    end, { ssl = SERVER })
    local out, err, status = run("curl", "-sS", "--cacert", CA, "https://localhost:" .. port .. "/")
    assert.are.equal(0, status, err)
    assert.are.equal("hello, curl\n", out)
    -- without the CA, curl refuses the certificate
    local _, err2, status2 = run("curl", "-sS", "https://localhost:" .. port .. "/")
    assert.are_not.equal(0, status2)
    assert.matches("certificate", err2)
    close_server(server)
  end)

  it("python3's ssl client against an alua server", function()
    local server, port = server_with(function(r, w)
      w:write("python said: " .. await(r:readline()))
      await(w:drain())
      w:close()
    end, { ssl = SERVER })
    local out, err, status = run("python3", "-c", PY_CLIENT, CA, tostring(port))
    assert.are.equal(0, status, err)
    assert.matches("^TLSv1%.3 python said: hello from python\n$", out)
    close_server(server)
  end)
end)

describe("resources", function()
  it("connections come and go without the memory growing", function()
    if VALGRIND or ASAN then return end -- they check the frees; this, that nothing piles up
    local server, port = tls_echo_server()
    local function one()
      local r, w = await(open_connection("localhost", port, { ssl = { cafile = CA } }))
      w:write("x\n")
      await(r:readline())
      w:close()
      await(w:wait_closed())
    end
    local function rss()
      collectgarbage()
      for line in io.lines("/proc/self/status") do
        local v = line:match("^VmRSS:%s+(%d+)")
        if v then return tonumber(v) end
      end
    end
    for _ = 1, 50 do one() end
    local before = rss()
    for _ = 1, 300 do one() end
    local grown = rss() - before
    assert.is_true(grown < 4096, "RSS grew by " .. grown .. " KiB over 300 connections")
    close_server(server)
  end)
end)
