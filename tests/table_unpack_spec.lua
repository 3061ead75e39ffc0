-- table_unpack_spec.lua — the alua command's table.unpack (vm/unpack.c): Lua 5.4's, with
-- room for the call its values go to, so that f(table.unpack(big)) does not double the
-- stack (a generational collector never shrinks it).

describe("table.unpack", function()
  it("returns what Lua's does: ranges, holes, metamethods, errors", function()
    assert.are.same({ n = 3, 1, 2, 3 }, table.pack(table.unpack({ 1, 2, 3 })))
    assert.are.same({ n = 2, 2, 3 }, table.pack(table.unpack({ 1, 2, 3 }, 2)))
    assert.are.same({ n = 2, 1, 2 }, table.pack(table.unpack({ 1, 2, 3 }, 1, 2)))
    assert.are.same({ n = 3, nil, "b", nil }, table.pack(table.unpack({ [2] = "b" }, 1, 3)))
    assert.are.equal(0, select("#", table.unpack({}, 3, 2)))
    assert.are.equal(0, select("#", table.unpack({})))
    local proxy = setmetatable({}, { __len = function() return 3 end,
      __index = function(_, k) return k * 10 end })
    assert.are.same({ n = 3, 10, 20, 30 }, table.pack(table.unpack(proxy)))
    assert.are.same({ n = 2, -10, 0 }, table.pack(table.unpack(proxy, -1, 0)))
    assert.matches("too many results to unpack", select(2, pcall(table.unpack, {}, 1, 1e7)))
    assert.matches("too many results to unpack",
      select(2, pcall(table.unpack, {}, math.mininteger, math.maxinteger)))
    assert.matches("bad argument #2 to '[%w.]*unpack' %(number expected, got string%)",
      select(2, pcall(table.unpack, {}, "x")))
    assert.matches("attempt to get length", select(2, pcall(table.unpack, 42)))
    local t = {}
    for i = 1, 200000 do t[i] = i end
    assert.are.equal(200000, select("#", table.unpack(t)))
    assert.are.equal(200000, (select(200000, table.unpack(t))))
  end)

  it("copies a table's array part, its never-set slots as plain nils", function()
    -- vm/unpack.c copies the array part into the stack; a slot Lua sized but never set
    -- holds its "empty" nil, which must arrive as a nil like any other (rawequal, ==)
    local t = {}
    t[1], t[2], t[3] = "a", "b", "c" -- the array grows to 4: slot 4 never set
    local a, b, c, d = table.unpack(t, 1, 4)
    assert.are.same({ "a", "b", "c" }, { a, b, c })
    assert.is_true(d == nil)
    assert.is_true(rawequal(d, nil))
    assert.are.equal(4, select("#", table.unpack(t, 1, 4)))
    t[2] = nil -- a slot set to nil
    local _, nothing = table.unpack(t)
    assert.is_true(rawequal(nothing, nil))
    -- keys past the array part (in the hash part) and negative ones
    local mixed = { 1, 2 }
    mixed[10], mixed[-1], mixed[0] = 10, -1, 0
    assert.are.same({ n = 12, -1, 0, 1, 2, nil, nil, nil, nil, nil, nil, nil, 10 },
      table.pack(table.unpack(mixed, -1, 10)))
    -- objects come out as themselves
    local objs = { {}, function() end, coroutine.create(function() end) }
    local x, y, z = table.unpack(objs)
    assert.are.equal(objs[1], x)
    assert.are.equal(objs[2], y)
    assert.are.equal(objs[3], z)
  end)

  it("leaves room for the call: f(table.unpack(list)) grows the stack once, not twice", function()
    local n = 100000
    local t = {}
    for i = 1, n do t[i] = i end
    local co = coroutine.create(function()
      collectgarbage(); collectgarbage()
      local before = collectgarbage("count")
      local got = select("#", table.unpack(t)) -- a C function called with n values
      return got, (collectgarbage("count") - before) * 1024 / n
    end)
    local ok, got, per_value = coroutine.resume(co)
    assert.is_true(ok, got)
    assert.are.equal(n, got)
    -- 16 bytes a value (a stack slot); Lua's own unpack leaves the call to double it: 32
    assert.is_true(per_value < 24, "the stack grew by " .. per_value .. " bytes a value")
  end)
end)
