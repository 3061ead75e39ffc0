-- worker_messages.lua — workloads W (round trip) and M (one way): messages between the
-- main thread and one worker. This file is both: inside the worker (asyncio.parent set)
-- it echoes (round trip) or counts (one way).
-- usage: alua worker_messages.lua roundtrip|oneway [N]
--   prints round_trip_us=... / msgs_per_s=...
local asyncio = require "asyncio"

if asyncio.parent then
  local mode, n = ...
  asyncio.run(function()
    local parent = asyncio.parent
    if mode == "roundtrip" then
      for _ = 1, n do parent:send(await(parent:recv())) end
    else
      for _ = 1, n do await(parent:recv()) end
      parent:send("done")
    end
  end)
  return
end

local mode = arg[1] or "roundtrip"
local N = tonumber(arg[2]) or (mode == "roundtrip" and 100000 or 1000000)

asyncio.run(function()
  local w = await(asyncio.start_worker(arg[0], mode, N))
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  if mode == "roundtrip" then
    for i = 1, N do
      w:send(i)
      assert(await(w:recv()) == i)
    end
    print(string.format("round_trip_us=%.2f", (loop:time() - t0) * 1e6 / N))
  else
    for i = 1, N do w:send(i) end
    assert(await(w:recv()) == "done")
    print(string.format("msgs_per_s=%.0f", N / (loop:time() - t0)))
  end
  await(w:wait())
end)
