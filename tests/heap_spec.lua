-- heap_spec.lua — the alua command's allocator (vm/heap.c): the heap's growth is populated
-- by a thread of its own ("alua-heap") while the program goes on. The thread must not take
-- the process's signals, must not change what the program stores, and a child forked
-- while it runs must not inherit its lock.

local support = require "tests.support"

describe("the alua command's heap", function()
  it("grows through a thread that blocks SIGINT, and keeps what the program stores", function()
    local out, status = support.run_alua_checked([[
      local t, sum = {}, 0
      for i = 1, 300000 do t[i] = { i, tostring(i) } end -- ~40 MB: the heap grows
      for i = 1, #t do sum = sum + t[i][1] + #t[i][2] end
      print("sum", sum)
      local fillers, takers = 0, 0
      for _, entry in ipairs(await(asyncio.fs.scandir("/proc/self/task"))) do
        local f = io.open("/proc/self/task/" .. entry.name .. "/status")
        local status = f and f:read("a") or ""
        if f then f:close() end
        local name = status:match("Name:%s*([^\n]*)")
        local blocked = tonumber(status:match("SigBlk:%s*(%x+)") or "0", 16)
        if name == "alua-heap" then
          fillers = fillers + 1
          if blocked & (1 << (2 - 1)) == 0 then takers = takers + 1 end -- SIGINT is 2
        end
      end
      local heap = 0 -- the brk heap's size: a sanitizer's malloc does not grow it
      for line in io.lines("/proc/self/maps") do
        local from, to = line:match("^(%x+)-(%x+) .*%[heap%]")
        if from then heap = tonumber(to, 16) - tonumber(from, 16) end
      end
      print("grew", heap > 20e6, "fillers", fillers, "taking SIGINT", takers)
      -- a child forked now (libuv forks, then execs) starts with the lock free
      for _ = 1, 20 do
        local p = await(asyncio.create_subprocess_exec("true"))
        assert(await(p:wait()) == 0)
      end
      local more = {}
      for i = 1, 100000 do more[i] = { i } end
      print("children ran", #more)
    ]])
    assert.are.equal(0, status, out)
    local n = 300000
    local digits = 0
    for i = 1, n do digits = digits + #tostring(i) end
    assert.matches("sum\t" .. (n * (n + 1) // 2 + digits) .. "\n", out, 1, true)
    if out:find("grew\ttrue", 1, true) then
      assert.matches("grew\ttrue\tfillers\t1\ttaking SIGINT\t0\n", out, 1, true)
    else -- under ASan or TSan: their malloc, no brk heap to populate
      assert.matches("grew\tfalse\tfillers\t0\t", out, 1, true)
    end
    assert.matches("children ran\t100000\n", out, 1, true)
  end)
end)
