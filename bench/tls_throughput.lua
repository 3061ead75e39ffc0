-- tls_throughput.lua — one-way bulk transfer over loopback, plain TCP and TLS side by side:
-- a server task writes MIB MiB in 1 MiB writes (drain after each), a client reads them
-- with read(1 MiB). Both ends run in this one alua process (one core), so the TLS figure
-- pays for encryption and decryption. Certificates: made by tests/tls_certs.sh.
--   alua bench/tls_throughput.lua [MIB]          (from the repository root)
-- prints: mode=plain mib=... seconds=... mib_per_s=...   then the same for mode=tls
local mib = tonumber(arg[1]) or 1024
local dir = io.popen("mktemp -d"):read("l")
assert(os.execute("tests/tls_certs.sh '" .. dir .. "'"), "tests/tls_certs.sh failed")

local chunk = string.rep("x", 1 << 20)

local function transfer(mode)
  local sopts, copts = {}, {}
  if mode == "tls" then
    sopts.ssl = { certfile = dir .. "/server.pem", keyfile = dir .. "/server.key" }
    copts.ssl = { cafile = dir .. "/ca.pem" }
  end
  local server = await(asyncio.start_server(function(_, w)
    for _ = 1, mib do
      w:write(chunk)
      await(w:drain())
    end
    w:close()
  end, "127.0.0.1", 0, sopts))
  local r, w = await(asyncio.open_connection("127.0.0.1", select(2, server:sockname()), copts))
  local loop = asyncio.get_running_loop()
  local t0, n = loop:time(), 0
  while true do
    local data = await(r:read(1 << 20))
    if data == "" then break end
    n = n + #data
  end
  local dt = loop:time() - t0
  assert(n == mib << 20, "short transfer")
  print(("mode=%s mib=%d seconds=%.3f mib_per_s=%.0f%s"):format(mode, mib, dt, mib / dt,
    mode == "tls" and " cipher=" .. w:get_extra_info("ssl").cipher or ""))
  w:close()
  server:close()
  await(server:wait_closed())
end

transfer("plain")
transfer("tls")
os.execute("rm -rf '" .. dir .. "'")
