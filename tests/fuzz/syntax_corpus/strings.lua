s = "await x\z
   async" .. [==[
async function f() end]] ]==] --[[ await
]] -- async y
t = {'\x41\u{42}\65', 0x1p-4, 1e+10, .5, 3., 0xA.8P1}
