async function f(n)
  if await p(n) then return await q() elseif await r() then end
  while await p() do await s() end
  for i = await a(), await b() do end
  repeat await s() until await p()
  local t = { await a(), k = await b(), [await c()] = 1 }
  return (await a()), -await b(), #await c()
end
