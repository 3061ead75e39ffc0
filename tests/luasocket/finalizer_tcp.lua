-- finalizer_tcp.lua — luasocket_spec: a finalizer receives on a TCP socket (pattern from
-- $PATTERN) while the main code is inside a receive on it. Every allocation runs a whole
-- collection, and a finalizer is always pending (each one makes the next). Prints whether some
-- finalizer receive raised the clear error (those that ran while the main receive was
-- running), any other error, and how many lines arrived not once. Before, this crashed (a read
-- past the stream buffer), or lost or doubled lines. (Its allocations decide where
-- collections fall: small edits move them.)
local socket = require "asyncio.socket"
local pattern = tonumber(os.getenv("PATTERN")) or os.getenv("PATTERN")
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local sent = {}
for i = 1, 300 do sent[i] = ("line %014d"):format(i) end -- 19 bytes and "\n"
local payload = table.concat(sent, "\n") .. "\n"
asyncio.create_task(function()
  local c = assert(server:accept())
  for i = 1, #payload, 1000 do
    assert(c:send(payload, i, math.min(i + 999, #payload)))
    socket.sleep(0.0002)
  end
  socket.sleep(0.2)
  c:close()
end)
local c = assert(socket.connect("127.0.0.1", port))
local inside, hits, seen, errors = false, 0, {}, {}
local function receive() -- every read takes whole lines: a multiple of 20 bytes
  local data, err, partial = c:receive(pattern)
  if pattern == "*l" and data then data = data .. "\n" end
  for line in (data or partial):gmatch("([^\n]*)\n") do seen[line] = (seen[line] or 0) + 1 end
  return data
end
local mt = {}
mt.__gc = function()
  if inside then
    hits = hits + 1
    local ok, err = pcall(receive)
    if not ok then errors[#errors + 1] = tostring(err) end
  end
  if inside ~= nil then setmetatable({}, mt) end -- the next collection finalizes another
end
collectgarbage("incremental", 1, 1000, 30) -- every allocation: a whole collection
collectgarbage()
local function arm() setmetatable({}, mt) end
arm()
c:settimeout(5)
repeat
  inside = true
  local data = receive()
  inside = false
until data == nil or pattern == "*a"
inside = nil
collectgarbage("generational")
local clear, other = 0, {}
for _, e in ipairs(errors) do
  if e:find("called inside another receive on it", 1, true) then
    clear = clear + 1
  elseif not (e:find("cannot suspend here", 1, true) or e:find("one reader at a time", 1, true)) then
    other[#other + 1] = e
  end
end
local once, lost, twice = 0, 0, 0
for _, line in ipairs(sent) do
  local n = seen[line] or 0
  if n == 1 then once = once + 1 elseif n == 0 then lost = lost + 1 else twice = twice + 1 end
end
print(clear > 0 and "some raised the clear error" or ("none of %d: %s"):format(hits, errors[1]))
print(other[1] or "no other error")
print(("exactly once: %d, lost: %d, twice: %d"):format(once, lost, twice))
