async --[[c]] function --x
 a.b --[[
]] : c ( ) end
await	x
