-- ssl_exchange.lua — the same lua-sec calls run under stock lua5.4 with the real lua-sec
-- and under alua with asyncio.socket installed (luasocket_spec.lua compares what each
-- prints): certificate objects, ALPN both ways, client certificates.
-- arg[1]: the port of a python3 TLS server (luasocket_spec.lua's PY_TLS_PEER: the test
-- CA's localhost certificate, ALPN h2 then http/1.1, client certificates asked for and
-- checked), which sends "alpn=<name> client=<CN>" and closes; arg[2]: tls_certs.sh's
-- directory. The server-side part uses `openssl s_client` as the peer.
local socket = require "socket"
local ssl = require "ssl"
local x509 = require "ssl.x509"
local port, dir = assert(tonumber(arg[1])), assert(arg[2])

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. show(v[k]) end
  return "{" .. table.concat(out, ", ") .. "}"
end

local function say(label, ...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = show((select(i, ...))) end
  print(label .. ": " .. table.concat(out, ", "))
end

local function read(name)
  local f = assert(io.open(dir .. "/" .. name))
  local s = f:read("a")
  f:close()
  return s
end

local function client(params)
  local tcp = assert(socket.connect("127.0.0.1", port))
  tcp:settimeout(10)
  params.mode, params.protocol = "client", "any"
  local conn, err = ssl.wrap(tcp, params)
  if not conn then
    tcp:close()
    return nil, err
  end
  conn:sni("localhost")
  local ok, herr = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, herr
  end
  return conn
end

-- ---- the peer's certificate --------------------------------------------------------

local early = assert(ssl.wrap(assert(socket.connect("127.0.0.1", port)), { mode = "client", protocol = "any" }))
say("before the handshake", early:getpeercertificate())
say("chain before the handshake", early:getpeerchain())
say("alpn before the handshake", early:getalpn())
say("info before the handshake", early:info())
say("verification before the handshake", early:getpeerverification())
early:close()

local conn = assert(client { verify = "peer", cafile = dir .. "/ca.pem", alpn = { "http/1.1", "h2" } })
say("alpn of the client's list, the server's choice", conn:getalpn())
say("info", conn:info())
say("info fields", conn:info("protocol"), conn:info("bits"), conn:info("export"), conn:info("nope"))
say("verification", conn:getpeerverification())
local cert = conn:getpeercertificate()
say("tostring", (tostring(cert):match("^X509 certificate: ")))
say("pem is the server's file", cert:pem() == read("server.pem"))
say("subject", cert:subject())
say("issuer", cert:issuer())
local function date(s) return (s:gsub("%d%d:%d%d:%d%d", "hh:mm:ss"):gsub("%a%a%a +%d+", "Mon d")) end
say("notbefore, notafter shapes", date(cert:notbefore()), date(cert:notafter()))
local ca_cert = x509.load(read("ca.pem"))
say("the CA's dates are the certificate's or earlier", ca_cert:notbefore() ~= nil)
say("digest default is sha1", cert:digest() == cert:digest("sha1"), #cert:digest(), cert:digest():match("^%x+$") ~= nil)
say("digest sha256, sha512 lengths", #cert:digest("sha256"), #cert:digest("sha512"))
say("digest md5", cert:digest("md5"))
say("serial is upper-case hex", cert:serial():match("^[%dA-F]+$") ~= nil)
local pem, kind, bits = cert:pubkey()
say("pubkey", pem:match("^%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-\n") ~= nil, kind, bits)
say("getsignaturename", cert:getsignaturename())
say("validat now, at 0", cert:validat(os.time()), cert:validat(0))
say("extensions", cert:extensions())
say("setencode", cert:setencode("utf8"), cert:setencode("latin1"), cert:setencode("ai5"))
say("subject after setencode", cert:subject()[1].value)
say("the CA issued it", ca_cert:issued(cert))
say("another CA did not", x509.load(read("other-ca.pem")):issued(cert))
-- (OpenSSL's server sends the CA after its own: it builds the chain from its trust store)
local second = conn:getpeercertificate(2)
say("second of the chain", tostring(second):match("^X509 certificate: ") ~= nil, second:subject()[1].value)
say("third of the chain", conn:getpeercertificate(3))
say("index 0", conn:getpeercertificate(0))
local chain = conn:getpeerchain()
say("chain", #chain, chain[1]:digest() == cert:digest(), chain[2]:digest() == second:digest())
say("peer says", conn:receive("*l"))
conn:close()

-- digests of a known certificate agree with the openssl command's fingerprint
local fp = io.popen("openssl x509 -noout -fingerprint -sha256 -in '" .. dir .. "/server.pem'"):read("l")
say("sha256 as openssl's fingerprint", cert:digest("sha256") == fp:match("=(.*)"):gsub(":", ""):lower())
say("loadcertificate", ssl.loadcertificate(read("client.pem")):subject()[1].value)
say("load garbage", x509.load("garbage"))

-- ---- ALPN as a client ----------------------------------------------------------------

local function alpn_of(list)
  local c, err = client { verify = "none", alpn = list }
  if not c then return nil, err end
  local got = c:getalpn()
  local line = c:receive("*l")
  c:close()
  return got, line
end
say("alpn one name", alpn_of("http/1.1"))
local unchecked = assert(client { verify = "none" })
say("verification not asked for (the chain ends in the test CA)", unchecked:getpeerverification())
unchecked:close()
say("alpn none in common", alpn_of { "spdy/1" })
say("alpn not asked", alpn_of(nil))
for _, bad in ipairs { {}, { "" }, { ("x"):rep(256) }, { 1 }, 42 } do
  say("alpn " .. show(bad), ssl.newcontext { mode = "client", protocol = "any", alpn = bad })
end

-- ---- a client certificate --------------------------------------------------------------

conn = assert(client { verify = "peer", cafile = dir .. "/ca.pem", certificate = dir .. "/client.pem",
  key = dir .. "/client.key" })
say("peer says, with a client certificate", conn:receive("*l"))
conn:close()

-- ---- as a server: openssl s_client connects -------------------------------------------

local server = assert(socket.bind("127.0.0.1", 0))
local _, sport = server:getsockname()
server:settimeout(10)
local function serve(params, s_client_args)
  local out = os.tmpname()
  -- s_client reads /dev/null: after the handshake it ends; its report goes to a file
  os.execute(("openssl s_client -connect 127.0.0.1:%s -servername localhost %s </dev/null >%s 2>&1 &")
    :format(sport, s_client_args, out))
  local tcp = assert(server:accept())
  tcp:settimeout(10)
  params.mode, params.protocol = "server", "any"
  params.certificate, params.key = dir .. "/server.pem", dir .. "/server.key"
  local c = assert(ssl.wrap(tcp, params))
  local ok, err = c:dohandshake()
  local result = { ok = ok, err = err }
  if ok then
    result.alpn = c:getalpn()
    local peer = c:getpeercertificate()
    result.peer = peer and peer:subject()[1].value
    result.second = c:getpeercertificate(2)
    -- (with no client certificate lua-sec's server lists one unusable object: not compared)
    if peer then result.chain = #c:getpeerchain() end
  end
  c:receive("*a") -- until s_client ends
  c:close()
  local report = ""
  for _ = 1, 100 do -- s_client writes its report as it exits
    local f = io.open(out)
    report = f and f:read("a") or ""
    if f then f:close() end
    if report:find("ALPN") then break end
    socket.sleep(0.05)
  end
  os.remove(out)
  result.s_client = report:match("ALPN protocol: [^\n]*") or report:match("No ALPN negotiated")
  return result
end
say("server alpn, the server's preference", serve({ alpn = { "h2", "http/1.1" } }, "-alpn http/1.1,h2"))
say("server alpn, none in common", serve({ alpn = { "h2" } }, "-alpn spdy/1"))
say("server alpn, client asks none", serve({ alpn = { "h2" } }, ""))
say("server asks a client certificate", serve({ verify = { "peer", "fail_if_no_peer_cert" }, cafile = dir .. "/ca.pem" },
  "-cert " .. dir .. "/client.pem -key " .. dir .. "/client.key"))
server:close()
print("end")
