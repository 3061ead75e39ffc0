-- context_switch.lua — call-form twin of the conformance seed_context_switch.lua: two
-- coroutines hand the loop to each other with sleep(0).
local asyncio = require "asyncio"

local foo = async(function()
  print("Running in foo")
  await(asyncio.sleep(0))
  print("Explicit context switch to foo again")
end)

local bar = async(function()
  print("Explicit context to bar")
  await(asyncio.sleep(0))
  print("Implicit context switch back to bar")
end)

local main = async(function()
  await(asyncio.gather(foo(), bar()))
end)

asyncio.run(main())
