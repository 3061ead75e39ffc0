-- finalizer_udp.lua — luasocket_spec: a finalizer receives on a UDP socket while the main
-- code is inside receivefrom on it. Every allocation runs a whole collection, and a finalizer
-- is always pending (each one makes the next). Prints whether finalizers ran inside, and how
-- many datagrams arrived not once. Before the datagram left the queue ahead of its push, this
-- ended in "free(): double free detected". (Its allocations decide where collections fall:
-- small edits move them.)
local socket = require "asyncio.socket"
local N = 100
local a = assert(socket.udp()); assert(a:setsockname("127.0.0.1", 0))
local b = assert(socket.udp()); assert(b:setsockname("127.0.0.1", 0))
local _, aport = a:getsockname()
a:settimeout(0)
local inside, hits, seen, sent = false, 0, {}, 0
local function note(d) if d then seen[d] = (seen[d] or 0) + 1 end end
local mt = {}
mt.__gc = function()
  if inside then hits = hits + 1; note((a:receivefrom())) end
  if inside ~= nil then setmetatable({}, mt) end -- the next collection finalizes another
end
collectgarbage("incremental", 1, 1000, 30) -- every allocation: a whole collection
setmetatable({}, mt)
for i = 1, N do
  for k = 1, 8 do sent = sent + 1; assert(b:sendto("d" .. sent, "127.0.0.1", aport)) end
  socket.sleep(0.001)
  inside = true
  note((a:receivefrom()))
  inside = false
  while true do local d = a:receivefrom(); if not d then break end; note(d) end
end
inside = nil
local lost, dup = 0, 0
for i = 1, sent do
  local c = seen["d" .. i] or 0
  if c == 0 then lost = lost + 1 elseif c > 1 then dup = dup + 1 end
end
collectgarbage("generational")
print(hits >= 50 and "finalizers received inside" or "too few: " .. hits)
print(("sent: %d, lost: %d, twice: %d"):format(sent, lost, dup))
