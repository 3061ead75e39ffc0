-- exchange.lua — the same LuaSocket calls run under stock lua5.4 with the real LuaSocket
-- and under alua with asyncio.socket installed (luasocket_spec.lua compares what each
-- prints). Plain Lua: outside a task every alua call runs the loop until it is done.
-- arg[1]: the port of the scripted peer (luasocket_spec.lua), which reads a scenario name
-- on a line and then sends, pauses and closes as that scenario says.
local socket = require "socket"
local port = assert(tonumber(arg[1]))

local function show(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[i] = type(v) == "string" and ("%q"):format(v) or tostring(v)
  end
  return table.concat(out, ", ")
end

local function say(label, ...) print(label .. ": " .. show(...)) end

-- A raised error without its position (LuaSocket's C functions have none to give).
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  return ok, (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

local function scenario(name, timeout, mode)
  local c = assert(socket.connect("127.0.0.1", port))
  if timeout then c:settimeout(timeout, mode) end
  assert(c:send(name .. "\n"))
  return c
end

-- lines: "\r\n" and "\n" ends, every "\r" dropped, an empty line, the last line cut by close
local c = scenario("lines")
for i = 1, 5 do say("lines " .. i, c:receive()) end
say("lines after close", c:receive("*l"))
say("count after close", c:receive(3))
say("count after close, prefix", c:receive(3, "pp"))
say("all after close", c:receive("*a"))
c:close()
say("receive on a closed socket", c:receive())
say("send on a closed socket", c:send("x"))

-- counts and prefixes
c = scenario("count")
say("count 4", c:receive(4))
say("count 6 prefix", c:receive(6, "PRE"))
say("prefix longer than count", c:receive(2, "XYZ"))
say("count 0", c:receive(0))
say("count with prefix of equal size", c:receive(3, "abc"))
say("number string", c:receive("2"))
say("line with prefix", c:receive("*l", ">"))
say("count past close", c:receive(100, "p:"))
c:close()

-- partial results on timeout, then the rest with the partial as prefix (the peer sends
-- the rest only when told "go", so no timing decides what comes first)
c = scenario("slow", 0.3)
local got, err, partial = c:receive()
say("line timeout", got, err, partial)
c:send("go\n")
c:settimeout(5)
say("line rest", c:receive("*l", partial))
c:settimeout(0.3)
got, err, partial = c:receive(10)
say("count timeout", got, err, partial)
c:send("go\n")
c:settimeout(5)
say("count rest", c:receive(10, partial))
c:settimeout(0.3)
got, err, partial = c:receive("*a")
say("all timeout", got, err, partial)
c:send("go\n")
c:settimeout(5)
say("all rest", c:receive("*a", partial))
c:close()

-- "*a" with nothing before the close
c = scenario("nothing")
say("count 0 of nothing", c:receive(0)) -- "" at once: no read, whatever the peer does
say("all of nothing", c:receive("*a"))
c:close()

-- a trickling peer (a byte every 0.15 s): the call ends at its timeout, whether total
-- ("t") or block ("b": LuaSocket counts it from the call's start too)
for _, mode in ipairs { "t", "b" } do
  c = scenario("trickle", 0.5, mode)
  got, err, partial = c:receive("*a")
  say("trickle timeout " .. mode, got, err, partial and #partial > 0 and #partial < 10)
  c:close()
end
-- with no timeout it is read to the end
c = scenario("trickle")
say("trickle to the end", c:receive("*a"))
c:close()

-- send with ranges
c = scenario("sink")
say("send range", c:send("hello world", 7, 9))
say("send negative range", c:send("hello", -2))
say("send empty range", c:send("hello", 4, 2))
say("send number", c:send(12345))
say("send all", c:send("abc\n"))
say("sink echo", c:receive())
c:close()

-- bad patterns and arguments raise, as LuaSocket's C functions do
c = scenario("nothing")
-- (the reason only: called through pcall, LuaSocket cannot name the method)
local function reason(ok, msg) return ok, msg:match("%((.*)%)") end
say("bad pattern", reason(raised(c.receive, c, "*x")))
say("bad pattern table", reason(raised(c.receive, c, {})))
say("negative count", reason(raised(c.receive, c, -1)))
say("bad timeout mode", reason(raised(c.settimeout, c, 1, "x")))
say("gettimeout", c:gettimeout())
say("settimeout", c:settimeout(nil), c:settimeout(-1), c:settimeout(2, "t"))
say("tostring client", (tostring(c):match("^tcp{client}: ")))
local host, cport, family = c:getpeername()
say("getpeername", host, cport == port, family)
host, cport, family = c:getsockname()
say("getsockname", host, type(cport), family)
say("getfd", math.type(c:getfd()), c:getfd() > 2)
say("setoption on a connected socket", c:setoption("tcp-nodelay", false), c:getoption("tcp-nodelay"),
  c:setoption("keepalive", true), c:getoption("keepalive"))
c:close()
say("getfd closed", c:getfd())

-- servers: accept with timeout, names, a client of our own
local server = assert(socket.bind("127.0.0.1", 0))
say("tostring server", (tostring(server):match("^tcp{server}: ")))
local shost, sport, sfamily = server:getsockname()
say("server name", shost, type(sport), sfamily)
server:settimeout(0.1)
say("accept timeout", server:accept())
local client = assert(socket.connect("127.0.0.1", sport))
server:settimeout(5)
local peer = server:accept()
say("accepted", (tostring(peer):match("^tcp{client}: ")))
client:send("ping\nrest")
client:shutdown("send")
say("server reads", peer:receive())
say("server reads rest", peer:receive("*a"))
peer:close()
say("client sees close", client:receive())
client:close()
server:close()
say("accept on closed server", server:accept())

-- connect failures
local closed_port = sport -- the server above is closed: nobody listens there
say("connect refused", socket.connect("127.0.0.1", closed_port))
local t = socket.tcp()
say("tcp connect refused", t:connect("127.0.0.1", closed_port))
t:close()

-- connecting from a local address: socket.connect's locaddr and locport, and a bound tcp
-- then connect (127.0.0.2 is a loopback address on Linux: the server sees it)
local ls = assert(socket.bind("127.0.0.1", 0))
local _, lport = ls:getsockname()
ls:settimeout(5)
local function from_local(label, c, err)
  if not c then return say(label, c, err) end
  local seen = ls:accept()
  local sh, sp = seen:getpeername()
  local ch, cp = c:getsockname()
  say(label, sh, ch, tonumber(sp) == tonumber(cp), (tostring(c):match("^tcp{client}: ")))
  seen:close()
  c:close()
end
from_local("connect from an address", socket.connect("127.0.0.1", lport, "127.0.0.2"))
from_local("connect4 from an address", socket.connect4("127.0.0.1", lport, "127.0.0.2", 0))
from_local("connect from *", socket.connect("127.0.0.1", lport, "*"))
local fixed = socket.connect("127.0.0.1", lport, "127.0.0.3", 0)
local _, fixed_port = fixed:getsockname()
ls:accept():close()
from_local("connect from a port in use", socket.connect("127.0.0.1", lport, "127.0.0.3", fixed_port))
fixed:close()
from_local("connect from a foreign address", socket.connect("127.0.0.1", lport, "192.0.2.1", 0))
from_local("connect from an address of the other family", socket.connect("127.0.0.1", lport, "::1", 0))
local bound = socket.tcp()
say("bind a client socket", bound:bind("127.0.0.4", 0))
say("bound tostring", (tostring(bound):match("^tcp{(%a+)}: ")))
from_local("bound then connect", bound:connect("127.0.0.1", lport) and bound)
ls:close()

-- select
local a = assert(socket.bind("127.0.0.1", 0))
local _, aport = a:getsockname()
local b = assert(socket.connect("127.0.0.1", aport))
local r, w, e = socket.select({ a }, { b }, 2)
say("select", #r, r[1] == a, r[a], #w, w[1] == b, w[b], e)
local d = a:accept()
r, w, e = socket.select({ d }, nil, 0.1)
say("select timeout", #r, #w, e)
b:send("x\n")
r, _, e = socket.select({ d }, nil, 2)
say("select readable", #r, r[1] == d, e)
say("select then receive", d:receive())
b:close()
r, _, e = socket.select({ d }, nil, 2)
say("select sees close", #r, e)
say("receive after peer close", d:receive())
d:close()
a:close()

-- UDP
local u1, u2 = socket.udp(), socket.udp()
say("udp setsockname", u1:setsockname("127.0.0.1", 0))
local _, u1port = u1:getsockname()
u2:setsockname("127.0.0.1", 0)
local _, u2port = u2:getsockname()
say("udp sendto", u2:sendto("datagram one", "127.0.0.1", u1port))
u1:settimeout(2)
local data, from, fromport = u1:receivefrom()
say("udp receivefrom", data, from, fromport == u2port)
say("udp tostring", (tostring(u1):match("^udp{unconnected}: ")))
u2:sendto("truncated datagram", "127.0.0.1", u1port)
say("udp receive size", u1:receive(9))
u1:settimeout(0.1)
say("udp receive timeout", u1:receive())
say("udp setpeername", u2:setpeername("127.0.0.1", u1port))
say("udp connected tostring", (tostring(u2):match("^udp{connected}: ")))
say("udp send", u2:send("connected"))
u1:settimeout(2)
say("udp receive", u1:receive())
local phost, pport = u2:getpeername()
say("udp getpeername", phost, pport == u1port)
u1:close()
u2:close()
say("udp receive closed", u1:receive())
say("udp sendto closed", u1:sendto("x", "127.0.0.1", u2port))

-- helpers
local ip, resolved = socket.dns.toip("127.0.0.1")
say("dns toip", ip, resolved.name, #resolved.alias, resolved.ip[1], #resolved.ip)
say("dns localhost", (socket.dns.toip("localhost")))
say("dns tohostname", (socket.dns.tohostname("127.0.0.1")))
say("dns gethostname", type(socket.dns.gethostname()))
say("skip", socket.skip(1, "a", "b", "c"))
local protected = socket.protect(function(x)
  local try = socket.newtry(function() print("finalizer ran") end)
  try(x, "try failed")
  return "ok"
end)
say("protect ok", protected(true))
say("protect fail", protected(false))
say("protect error", raised(socket.protect(function() error("plain error", 0) end)))
say("try", type(select(2, pcall(socket.try, nil, "try message"))), select(2, pcall(socket.try, nil, "try message"))[1])
say("gettime", type(socket.gettime()), socket.gettime() > 1.6e9)
local t0 = socket.gettime()
socket.sleep(0.1)
say("sleep", socket.gettime() - t0 >= 0.09)
print("end")
