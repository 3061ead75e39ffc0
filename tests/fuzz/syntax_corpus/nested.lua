print(await f(await g(), await h[await k]))
await run(function() local x = await y return (x) end, {await z})
local r = await gather(
  a(),
  b())
x = await f
(y)
