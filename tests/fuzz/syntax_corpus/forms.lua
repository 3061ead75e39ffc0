async function foo(a, b)
  await asyncio.sleep(0)
end
local async function q(sql) return await await x end
async function a.b:m(x) return await self.f:g("s"){1}[k].z end
x = async function(y) await(z) end
