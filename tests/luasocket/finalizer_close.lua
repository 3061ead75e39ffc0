-- finalizer_close.lua — luasocket_spec: a finalizer closes a TCP socket while the main
-- code is inside a receive on it (pattern from $PATTERN). Every allocation runs a whole
-- collection; the finalizer of the n-th collection inside the receive closes the socket,
-- for n = 1 to 30, each on a new connection, while more data comes. Prints the n after
-- which the closed object still held received bytes in its buffer (a receive that went on
-- after the close refilled it: n = 9 for a count of 5000 before), and what the receives
-- returned. (Its allocations decide where collections fall: small edits move them.)
local socket = require "asyncio.socket"
local pattern = tonumber(os.getenv("PATTERN")) or os.getenv("PATTERN")
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local refilled, results = {}, {}
for n = 1, 30 do
  local peer
  asyncio.create_task(function()
    peer = assert(server:accept())
    assert(peer:send(("x"):rep(3000)))
    socket.sleep(0.03)
    peer:send(("y"):rep(3000)) -- (the client may have closed already)
  end)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(0.2)
  socket.sleep(0.01)
  local left -- collections left before the close; nil: not armed
  local mt = {}
  mt.__gc = function()
    if left then
      left = left - 1
      if left == 0 then c:close() left = false end
    end
    if left ~= nil then setmetatable({}, mt) end
  end
  assert(c:dirty()) -- its own buffer holds the first 3,000 bytes now
  collectgarbage("incremental", 1, 1000, 30) -- every allocation: a whole collection
  collectgarbage()
  left = n
  setmetatable({}, mt)
  local data, err = c:receive(pattern)
  local closed = left == false
  left = nil
  collectgarbage("generational")
  if closed and #c.buf > 0 then refilled[#refilled + 1] = n end
  results[(data and "data" or tostring(err))] = true
  peer:close()
end
local kinds = {}
for k in pairs(results) do kinds[#kinds + 1] = k end
table.sort(kinds)
print("refilled after: " .. (refilled[1] and table.concat(refilled, " ") or "none"))
print("results: " .. table.concat(kinds, " "))
