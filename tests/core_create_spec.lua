-- core_create_spec.lua — what creation stores without Lua's API (async/core/lua54.c): a
-- coroutine object's function, name and arguments, its Task's copy of them and its
-- metatable, gather's list of children, a pending Task's anchor in the registry, the
-- holder of the coroutine object made last. Each store is raw only into an object the
-- collector has not blackened, else through the API; here the collector runs during
-- every allocation (incremental, no pause) or in generational steps, and every value
-- stored is reachable only through the object stored into. A value the collector lost
-- would read back wrong here (and as a use after free under ASan and valgrind).

local support = require "tests.support"
local create_task, gather = asyncio.create_task, asyncio.gather

local N = os.getenv("STRESS") == "quick" and 300 or 3000

-- fresh collectable values, one of each kind, reachable from nothing else
local function fresh(i)
  return { i = i }, "s" .. i .. string.rep("x", i % 50), function() return i end
end

local function check(i, t, s, f)
  assert.are.equal(i, t.i)
  assert.are.equal("s" .. i .. string.rep("x", i % 50), s)
  assert.are.equal(i, f())
end

local async function named(t, s, f, ...)
  assert.are.equal(0, select("#", ...))
  return t.i, s, f()
end

local unnamed = async(function(t, s, f) return t.i, s, f() end)

local function modes(body)
  for _, mode in ipairs({ "incremental", "generational" }) do
    it("with the " .. mode .. " collector", function()
      if mode == "incremental" then
        collectgarbage("incremental", 0, 100) -- a new cycle at once, small steps: always at work
      else
        collectgarbage("generational", 1, 10) -- a minor collection every few allocations, a major one often
      end
      local ok, err = pcall(body)
      collectgarbage("incremental", 300, 100) -- the alua command's settings (vm/main.c)
      collectgarbage("generational", 80, 300)
      assert(ok, err)
    end)
  end
end

describe("creation under the collector", function()
  describe("coroutine objects keep their function, name and arguments", function()
    modes(function()
      local objects = {}
      for i = 1, N do objects[i] = (i % 2 == 0 and named or unnamed)(fresh(i)) end
      collectgarbage()
      collectgarbage()
      for i = 1, N do
        local name = tostring(objects[i])
        if i % 2 == 0 then
          assert.matches("^<coroutine 'named'", name)
        else
          assert.matches("^<coroutine 'function <", name)
        end
        local t, s, f = await(objects[i])
        assert.are.equal(i, t)
        assert.are.equal("s" .. i .. string.rep("x", i % 50), s)
        assert.are.equal(i, f)
      end
    end)
  end)

  describe("a Task keeps its coroutine object's function and arguments", function()
    modes(function()
      local tasks = {}
      for i = 1, N do
        tasks[i] = create_task((i % 2 == 0 and named or unnamed)(fresh(i)))
        if i % 100 == 0 then collectgarbage() end
      end
      collectgarbage()
      collectgarbage()
      for i = 1, N do
        local t, s, f = await(tasks[i])
        assert.are.equal(i, t)
        assert.are.equal("s" .. i .. string.rep("x", i % 50), s)
        assert.are.equal(i, f)
        assert.are.equal("Task", getmetatable(tasks[i]).__name)
      end
    end)
  end)

  describe("a Task keeps each of 0 to 9 arguments, nils among them", function()
    modes(function()
      local async function count(...) return select("#", ...), ... end
      for n = 0, 9 do
        local tasks = {}
        for i = 1, N // 10 do
          local args = {}
          for k = 1, n do args[k] = (k % 3 ~= 0) and { k = k, i = i } or nil end
          tasks[i] = create_task(count(table.unpack(args, 1, n)))
        end
        collectgarbage()
        for i = 1, N // 10 do
          local got = { await(tasks[i]) }
          assert.are.equal(n, got[1])
          for k = 1, n do
            if k % 3 ~= 0 then
              assert.are.same({ k = k, i = i }, got[k + 1])
            else
              assert.is_nil(got[k + 1])
            end
          end
        end
      end
    end)
  end)

  describe("a pending Task kept only by its anchor runs, slots reused", function()
    -- anchor.c stores a Task's anchor raw into the registry's array (or through the API
    -- where the registry is black or the slot past its array); slots given back hold
    -- false and are taken again in the next round. Nothing but the anchor keeps these
    -- Tasks (and their arguments) alive: a Task lost would never run.
    modes(function()
      local seen = {}
      local async function record(t, s, f)
        await(asyncio.sleep(0))
        check(t.i, t, s, f)
        seen[t.i] = (seen[t.i] or 0) + 1
      end
      for round = 1, 3 do
        for i = 1, N do
          create_task(record(fresh(i)))
          if i % 500 == 0 then collectgarbage() end
        end
        collectgarbage()
        collectgarbage()
        for _ = 1, 3 do await(asyncio.sleep(0)) end
        for i = 1, N do assert.are.equal(round, seen[i]) end
      end
    end)
  end)

  describe("every coroutine object dropped untaken is reported once", function()
    -- coro.c keeps the object made last in its holder's one user value, stored raw where
    -- the holder is not black (else through the API), emptied raw when the object is
    -- taken or moves to the nursery's list; here the collector runs all along, between
    -- an object's making and what becomes of it. One the holder lost before a collection
    -- found it would go unreported; one kept too long, reported twice or never freed.
    for _, mode in ipairs({ "incremental", "generational" }) do
      it("with the " .. mode .. " collector", function()
        local out, status = support.run_alua_checked(([[
          collectgarbage(%s)
          local async function lost(x) return x end
          local async function kept(x) return x end
          local tasks = {}
          for i = 1, %d do
            local c = lost({ i }) -- made last: in the holder
            c = nil
            if i %% 7 == 0 then collectgarbage("step", 0) end -- dropped, still held
            if i %% 3 == 0 then tasks[#tasks + 1] = asyncio.create_task(kept({ i })) end
          end
          for k, t in ipairs(tasks) do assert(await(t)[1] == 3 * k) end
          collectgarbage(); collectgarbage(); collectgarbage()
          print("done")
        ]]):format(mode == "incremental" and '"incremental", 0, 100' or '"generational", 1, 10',
          N // 3))
        assert.are.equal(0, status, out)
        local lost, kept = 0, 0
        for _ in out:gmatch("coroutine 'lost' was never awaited") do lost = lost + 1 end
        for _ in out:gmatch("coroutine 'kept' was never awaited") do kept = kept + 1 end
        assert.are.equal(N // 3, lost)
        assert.are.equal(0, kept)
        assert.matches("done\n", out)
      end)
    end
  end)

  it("a coroutine object's site is its caller's line, read from the frame below its own", function()
    -- site_id_at: the caller's frame found from async_call's own; a C caller (pcall) or
    -- none (the body of a coroutine) falls back to lua_getstack's walk
    local out, status = support.run_alua([[
      local async function lost(x) return x end
      local a = lost(1)
      local b = select(2, pcall(lost, 2))
      local c = coroutine.wrap(lost)(3)
      local function deep() return lost(4) end
      local d = deep()
      for i = 1, 3 do local _ = lost(i) end
      a, b, c, d = nil
      collectgarbage(); collectgarbage(); collectgarbage()
      print("collected")
    ]])
    assert.are.equal(0, status)
    local sites = {}
    for line in out:gmatch("[^\n]+") do
      local site = line:match("^RuntimeWarning: coroutine 'lost' was never awaited(.*)$")
      if site then sites[#sites + 1] = site:match("created at [^)]*:(%d+)%)") or "none" end
    end
    table.sort(sites)
    assert.are.same({ "2", "3", "5", "7", "7", "7", "none" }, sites)
    assert.matches("collected\n$", out)
  end)

  describe("gather keeps every child it was given", function()
    modes(function()
      local async function child(t, s, f)
        await(asyncio.sleep(0))
        check(t.i, t, s, f)
        return t.i
      end
      local tasks = {}
      for i = 1, N do tasks[i] = create_task(child(fresh(i))) end
      local g = gather(table.unpack(tasks))
      tasks = nil
      collectgarbage()
      collectgarbage()
      local results = { await(g) }
      assert.are.equal(N, #results)
      for i = 1, N do assert.are.equal(i, results[i]) end
    end)
  end)

  describe("gather of Tasks, coroutine objects and Futures mixed", function()
    modes(function()
      local async function value(x) return x end
      local args = {}
      for i = 1, 300 do
        local kind = i % 3
        if kind == 0 then
          args[i] = create_task(value({ i = i }))
        elseif kind == 1 then
          args[i] = value({ i = i })
        else
          local f = asyncio.Future()
          f:set_result({ i = i })
          args[i] = f
        end
      end
      local results = { await(gather(table.unpack(args))) }
      for i = 1, 300 do assert.are.equal(i, results[i].i) end
    end)
  end)
end)
