-- hello.lua — what `make run` shows: tasks running side by side on one loop.
local asyncio = require "asyncio"

local greet = async(function(name, delay)
  await(asyncio.sleep(delay))
  print(("hello from %s after %.2f s"):format(name, delay))
  return #name
end)

local loop = asyncio.get_running_loop()
local t0 = loop:time()
local a, b, c = await(asyncio.gather(greet("alua", 0.03), greet("Lua", 0.01), greet("libuv", 0.02)))
print(("three greetings (%d, %d, %d letters) in %.2f s, not %.2f s"):format(a, b, c,
  loop:time() - t0, 0.06))
