x = await
f()
local a = async
function f() end
x = await --[[ a
 comment ]] f()
