-- socket/ssl.lua — a lua-sec compatible `ssl` module on alua's TLS (async/tls.c), what
-- `require "ssl"` returns after asyncio.socket.install(): ssl.newcontext, ssl.wrap, and
-- connections with dohandshake, sni, receive, send, close, settimeout, info. TLS runs on
-- the TCP object's own stream, so a connection's receive and send are the TCP object's
-- (the stream hands out decrypted data once the handshake is done).
local core, _, lib = ...

local net = core.net
local wait = lib.wait
local type, error, pcall, setmetatable, getmetatable = type, error, pcall, setmetatable, getmetatable
local ipairs = ipairs
local format = string.format

local ssl = { _VERSION = "1.2.0 (alua)" }

-- What lua-sec's ssl.config tells about the build; alua's TLS offers these.
ssl.config = {
  protocols = { any = true, tlsv1_2 = true, tlsv1_3 = true },
  capabilities = { alpn = true, curves_list = false, dane = false },
  algorithms = {}, options = {}, verify = { none = true, peer = true, fail_if_no_peer_cert = true },
}

-- ---- contexts ---------------------------------------------------------------------------

local Context = { __name = "SSL context" }
Context.__index = Context
function Context:__tostring() return format("SSL context: %p", self) end

-- "none" | "peer" | {"peer", "fail_if_no_peer_cert", ...}
local function verifies(v)
  if type(v) == "table" then
    for _, x in ipairs(v) do
      if x == "peer" or x == "fail_if_no_peer_cert" then return true end
    end
    return false
  end
  return v == "peer" or v == "fail_if_no_peer_cert"
end

-- ALPN's wire format of a list of names (lua-sec's checks and messages)
local function alpn_wire(list)
  local parts = {}
  for i, name in ipairs(list) do
    if type(name) ~= "string" then return nil end
    if #name == 0 then return nil, "invalid ALPN name (empty string)" end
    if #name > 255 then return nil, "invalid ALPN name (length > 255)" end
    parts[i] = string.char(#name) .. name
  end
  if #parts == 0 then return nil, "invalid ALPN list (empty)" end
  return table.concat(parts)
end

-- params.alpn: a client offers a name or a list; a server takes the first of its list
-- that the client offers (a server's function, as lua-sec allows, is not offered).
local function alpn_param(params, server)
  local alpn = params.alpn
  if alpn == nil then return true, nil end
  if type(alpn) == "string" and not server then alpn = { alpn } end
  if type(alpn) ~= "table" then
    if server and type(alpn) == "function" then
      return nil, "ALPN callbacks are not supported by alua's ssl layer (give a list)"
    end
    return nil, "invalid ALPN parameter"
  end
  local wire, err = alpn_wire(alpn)
  if not wire then return nil, err end
  return true, wire
end

-- newcontext(params) -> context, or nil, message. params: mode ("client" | "server"),
-- protocol, key, certificate, cafile, password, verify, alpn, options (kept; alua's TLS
-- speaks TLS 1.2 and 1.3 whatever protocol and options say).
function ssl.newcontext(params)
  if type(params) ~= "table" then
    error("bad argument #1 to 'newcontext' (table expected, got " .. type(params) .. ")", 2)
  end
  local mode = params.mode
  if mode ~= "client" and mode ~= "server" then return nil, "invalid mode" end
  local server = mode == "server"
  if server and not params.certificate then return nil, "a server context needs a certificate" end
  local verify = verifies(params.verify)
  local password = type(params.password) == "string" and params.password or nil
  local alpn_ok, alpn = alpn_param(params, server)
  if not alpn_ok then return nil, alpn end
  local ok, ctx = pcall(net.tls_context, server, verify, params.cafile, params.certificate,
    params.key, password, alpn)
  if not ok then return nil, lib.message(ctx) end
  local c = setmetatable({ ctx = ctx, server = server, verify = verify, params = params }, Context)
  return c
end

-- ---- connections ------------------------------------------------------------------------

local conn = {} -- the methods
local Conn = { __index = conn }
function Conn:__tostring() return format("SSL connection: %p", self) end

local function check(self, fname)
  if getmetatable(self) ~= Conn then
    error(format("bad argument #1 to '%s' (SSL:Connection expected, got %s)", fname, type(self)), 3)
  end
end

-- wrap(sock, params | context) -> connection, or nil, message. sock: a connected
-- asyncio.socket TCP object, which the connection takes over.
function ssl.wrap(sock, cfg)
  local ctx = cfg
  if getmetatable(cfg) ~= Context then
    local err
    ctx, err = ssl.newcontext(cfg)
    if not ctx then return nil, err end
  end
  if type(sock) ~= "table" or type(sock._stream) ~= "function" or not sock:_stream() then
    return nil, "wrap: expected a connected asyncio.socket TCP object"
  end
  local c = setmetatable({ sock = sock, ctx = ctx }, Conn)
  return c
end

-- sni(name): the server name a client asks for (a server's table of names is accepted
-- and ignored: alua's servers answer with their one certificate)
function conn:sni(name)
  check(self, "sni")
  if type(name) == "string" then self.servername = name end
  return true
end

-- dohandshake() -> true, or nil, message ("wantread" when a zero timeout expired,
-- "closed", OpenSSL's reason). As lua-sec, a client checks the certificate chain when
-- the context verifies, not the host name.
function conn:dohandshake()
  check(self, "dohandshake")
  if self.done then return true end
  local sock, ctx = self.sock, self.ctx
  local h = sock:_stream()
  if not h then return nil, "closed" end
  sock.tm:markstart()
  if not self.started then
    local ok, err = pcall(net.tls_start, h, ctx.ctx, ctx.server, self.servername, false, false)
    if not ok then return nil, lib.message(err) end
    self.started = true
  end
  while true do
    local ok, finished = pcall(net.tls_handshake, h)
    if not ok then return nil, lib.message(finished) end
    if finished then
      self.done = true
      return true
    end
    local wok, arrived = pcall(function() return wait(net.wait_read(h), sock.tm:left()) end)
    if not wok then return nil, lib.message(arrived) end
    if not arrived then return nil, "wantread" end
  end
end

-- receive, send and the rest: the TCP object's, on the decrypted stream
for _, name in ipairs { "receive", "send", "settimeout", "gettimeout", "getpeername", "getsockname",
  "getstats", "setstats", "dirty", "getfd", "setoption", "getoption", "shutdown", "getfamily" } do
  conn[name] = function(self, ...)
    check(self, name)
    return self.sock[name](self.sock, ...)
  end
end

function conn:close()
  check(self, "close")
  self.sock:close()
  return true
end

-- info([field]): {protocol=, cipher=, bits=, algbits=, key=, authentication=,
-- encryption=, mac=, export=} of the connection, as lua-sec reads them from OpenSSL's
-- description of the cipher; nil, "closed" before the handshake
function conn:info(field)
  check(self, "info")
  local h = self.sock:_stream()
  local i = h and self.done and net.tls_info(h)
  if not i then return nil, "closed" end
  local t = { bits = i.bits + 0.0, algbits = i.alg_bits + 0.0 }
  local d = i.description
  if d then
    t.cipher, t.protocol, t.key, t.authentication, t.encryption, t.mac =
      d:match("^(%S+)%s+(%S+)%s+Kx=(%S+)%s+Au=(%S+)%s+Enc=(%S+)%s+Mac=(%S+)")
    t.export = d:match("%sexport%s*$") ~= nil
  end
  t.protocol = i.version
  if field then return t[field] end
  return t
end

-- getpeerverification() -> true when the peer's certificate passed the check; else
-- false and what the check found (OpenSSL checks even when verify is "none"), or
-- "closed" before the handshake
function conn:getpeerverification()
  check(self, "getpeerverification")
  local h = self.sock:_stream()
  local i = h and self.done and net.tls_info(h)
  if not i then return false, "closed" end
  if not i.verify_error then return true end
  return false, i.verify_error
end

function conn:want()
  check(self, "want")
  return "nothing"
end

-- getalpn() -> the protocol ALPN agreed on, or nil
function conn:getalpn()
  check(self, "getalpn")
  local h = self.sock:_stream()
  return h and net.tls_alpn(h) or nil
end

-- ---- certificates (x509.c: lua-sec's certificate objects) ----------------------------------

-- The stream of a connection whose handshake is done, or nil (lua-sec's "closed").
local function connected(self)
  local h = self.done and self.sock:_stream()
  return h or nil
end

-- getpeercertificate([n]) -> the peer's certificate (n = 1) or the nth of the chain it
-- sent; nil when there is none; nil, "closed" before the handshake
function conn:getpeercertificate(n)
  check(self, "getpeercertificate")
  n = n == nil and 1 or lib.check_port("getpeercertificate", n, 1)
  local h = connected(self)
  if not h then return nil, "closed" end
  if n < 1 then return nil, "invalid certificate index" end
  return (net.tls_peer_certificate(h, n)) -- nil when there is none
end

-- getpeerchain() -> the certificates the peer sent, its own first
function conn:getpeerchain()
  check(self, "getpeerchain")
  local h = connected(self)
  if not h then return nil, "closed" end
  local list = {}
  while true do
    local cert = net.tls_peer_certificate(h, #list + 1)
    if not cert then return list end
    list[#list + 1] = cert
  end
end

-- ssl.loadcertificate(pem) -> a certificate object, or nil (also require "ssl.x509".load)
function ssl.loadcertificate(pem)
  pem = lib.check_string("loadcertificate", pem, 1)
  return net.x509_load(pem)
end

-- select's view: the TCP object's
function conn:_readable() return self.sock:_readable() end
function conn:_read_waiter() return self.sock:_read_waiter() end
function conn:_writable() return self.sock:_writable() end
function conn:_write_waiter() return self.sock:_write_waiter() end

return ssl
