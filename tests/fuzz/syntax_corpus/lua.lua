local t = setmetatable({}, {__index = function(t, k) return k end})
for i = 1, 10 do t[i] = i * 2 end
repeat local x = 1 until x
while false do end
goto done
::done::
return t
