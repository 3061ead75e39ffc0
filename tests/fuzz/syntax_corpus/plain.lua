local await = require "x"
t.async = f
M.await(x)
await = 3
x = await + 1
return await
::await:: goto await
local function async() end
for await in pairs(t) do end
