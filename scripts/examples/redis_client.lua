-- redis_client.lua — a Redis client speaking RESP over asyncio streams: commands go out
-- as arrays of bulk strings, replies are parsed by their type byte (+ - : $ *), and a
-- pipeline writes many commands before reading their replies in order.
--   alua scripts/examples/redis_client.lua [port [host]]      (a running redis-server)
local asyncio = require "asyncio"

local Redis = {}
Redis.__index = Redis
Redis.null = setmetatable({}, { __tostring = function() return "(nil)" end })

local function encode(args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(parts)
end

local ReplyError = {} -- the metatable of error replies ("-ERR ...")
ReplyError.__tostring = function(e) return e.message end

-- One reply: a string, an integer, Redis.null, a list, or a ReplyError.
local read_reply
read_reply = async(function(reader)
  local line = await(reader:readline())
  if line == "" then error("redis: the server closed the connection", 0) end
  local kind, rest = line:sub(1, 1), line:sub(2, -3)
  if kind == "+" then return rest end
  if kind == "-" then return setmetatable({ message = rest }, ReplyError) end
  if kind == ":" then return math.tointeger(tonumber(rest)) end
  if kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return Redis.null end
    return (await(reader:readexactly(n + 2))):sub(1, n) -- the data is binary-safe
  end
  if kind == "*" then
    local n = tonumber(rest)
    if n < 0 then return Redis.null end
    local list = {}
    for i = 1, n do list[i] = await(read_reply(reader)) end
    return list
  end
  error("redis: unexpected reply " .. ("%q"):format(line), 0)
end)

Redis.connect = async(function(host, port)
  local reader, writer = await(asyncio.open_connection(host, port))
  return setmetatable({ reader = reader, writer = writer, lock = asyncio.Lock() }, Redis)
end)

-- client:call("SET", "k", "v") -> the reply; an error reply raises
Redis.call = async(function(self, ...)
  local _ <close> = await(self.lock:acquire()) -- one request/reply exchange at a time
  self.writer:write(encode { ... })
  local reply = await(read_reply(self.reader))
  if getmetatable(reply) == ReplyError then error("redis: " .. reply.message, 0) end
  return reply
end)

-- client:pipeline{{"INCR", "k"}, ...} -> the list of replies (error replies included)
Redis.pipeline = async(function(self, commands)
  local _ <close> = await(self.lock:acquire())
  local out = {}
  for i, c in ipairs(commands) do out[i] = encode(c) end
  self.writer:write(table.concat(out))
  await(self.writer:drain())
  local replies = {}
  for i = 1, #commands do replies[i] = await(read_reply(self.reader)) end
  return replies
end)

function Redis:close() self.writer:close() end

local function show(v)
  if type(v) == "table" and getmetatable(v) == nil then
    local items = {}
    for i, x in ipairs(v) do items[i] = show(x) end
    return "[" .. table.concat(items, ", ") .. "]"
  end
  return tostring(v)
end

-- the demo
local port, host = tonumber(arg[1]) or 6379, arg[2] or "127.0.0.1"
local r = await(Redis.connect(host, port))
local function say(what, v) print(what .. " -> " .. show(v)) end

say("PING", await(r:call("PING")))
await(r:call("DEL", "alua:greeting", "alua:counter", "alua:list", "alua:bin", "alua:shared"))
say("SET alua:greeting hello", await(r:call("SET", "alua:greeting", "hello")))
say("GET alua:greeting", await(r:call("GET", "alua:greeting")))
say("GET alua:missing", await(r:call("GET", "alua:missing")))
say("RPUSH alua:list a b c", await(r:call("RPUSH", "alua:list", "a", "b", "c")))
say("LRANGE alua:list 0 -1", await(r:call("LRANGE", "alua:list", 0, -1)))
local binary = "line\r\nbreak\0zero" .. string.rep("x", 100000)
await(r:call("SET", "alua:bin", binary))
say("binary value of " .. #binary .. " bytes comes back equal", await(r:call("GET", "alua:bin")) == binary)
local ok, err = pcall(await, r:call("NOSUCHCOMMAND"))
say("NOSUCHCOMMAND raises", not ok and tostring(err):match("^redis: ERR") ~= nil)

local incrs = {}
for i = 1, 1000 do incrs[i] = { "INCR", "alua:counter" } end
local replies = await(r:pipeline(incrs))
say("pipeline of 1000 INCR, last reply", replies[1000])

-- ten clients at once, each on its own connection
local clients = {}
for i = 1, 10 do
  clients[i] = async(function()
    local c = await(Redis.connect(host, port))
    for _ = 1, 50 do await(c:call("INCR", "alua:shared")) end
    c:close()
  end)()
end
await(asyncio.gather(table.unpack(clients)))
say("10 clients x 50 INCR alua:shared", await(r:call("GET", "alua:shared")))
await(r:call("DEL", "alua:greeting", "alua:counter", "alua:list", "alua:bin", "alua:shared"))
r:close()
