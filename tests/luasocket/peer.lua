-- peer.lua — the scripted peer of exchange.lua (an alua streams server): prints
-- "port N", then for each connection reads a scenario name and plays it.
local sleep = asyncio.sleep

local SCENARIOS = {
  lines = function(_, w)
    w:write("one\r\ntwo\nth\rree\r\n\nfive\n")
    w:write("partial")
  end,
  count = function(_, w)
    w:write("abcdefghijklmnop")
    w:write("ABCDEF\r\n")
    w:write("tail")
  end,
  slow = function(r, w)
    w:write("first ")
    await(r:readline())
    w:write("line\r\n12345")
    await(r:readline())
    w:write("67890some")
    await(r:readline())
    w:write(" more")
  end,
  nothing = function() end,
  trickle = function(_, w)
    for i = 1, 10 do
      w:write(tostring(i % 10))
      await(sleep(0.15))
    end
  end,
  sink = function(r, w)
    local got = await(r:readexactly(3 + 2 + 5 + 4))
    w:write(got)
  end,
}

local server = await(asyncio.start_server(function(r, w)
  local name = (await(r:readline())):gsub("\n$", "")
  local play = SCENARIOS[name]
  -- the client may close first: its end is no error here
  if play then pcall(function() await(asyncio.create_task(play, r, w)) end) end
  pcall(function() await(w:drain()) end)
  w:close()
end, "127.0.0.1", 0))
print("port " .. select(2, server:sockname()))
io.stdout:flush()
-- bounded: the spec kills it; if the spec dies, it ends by itself
await(sleep(120))
server:close()
