-- core_errors_spec.lua — asyncio's error classes, :is(), OSError kinds, user errors
-- passing through tasks unchanged, tracebacks kept across task boundaries.

local support = require "tests.support"
local sleep, create_task, Future = asyncio.sleep, asyncio.create_task, asyncio.Future

-- every spec awaits or cancels what it creates: fail the one that leaves tasks running
after_each(support.expect_no_tasks_left)

local raises = support.raises

local CLASSES = { "CancelledError", "TimeoutError", "InvalidStateError", "QueueEmpty",
  "QueueFull", "QueueShutDown", "IncompleteReadError", "LimitOverrunError", "OSError",
  "ConnectionError", "BrokenPipeError", "SSLError", "ExceptionGroup", "ProtocolError" }

describe("error classes", function()
  it("all exist and make instances with type, message, traceback and __tostring", function()
    for _, name in ipairs(CLASSES) do
      local class = asyncio[name]
      assert.are.equal("table", type(class), name)
      local e = class("went wrong")
      assert.are.equal(name, e.type)
      assert.are.equal("went wrong", e.message)
      assert.are.equal("string", type(e.traceback))
      assert.matches("stack traceback", e.traceback)
      assert.are.equal(name .. ": went wrong", tostring(e))
      assert.is_true(class:is(e), name)
    end
  end)

  it("an instance without a message prints its type alone and has an empty message", function()
    local e = asyncio.TimeoutError()
    assert.are.equal("", e.message)
    assert.are.equal("TimeoutError", tostring(e))
  end)

  it("the traceback says where the error was made", function()
    local function make_it_here() return asyncio.QueueEmpty("x") end
    assert.matches("make_it_here", make_it_here().traceback)
  end)

  it("extra fields are set from the second argument", function()
    local e = asyncio.IncompleteReadError("short read", { partial = "ab", expected = 5 })
    assert.are.equal("ab", e.partial)
    assert.are.equal(5, e.expected)
    local g = asyncio.ExceptionGroup("several", { errors = { "a", "b" } })
    assert.are.same({ "a", "b" }, g.errors)
  end)

  it("are raised by error() and caught by pcall as the same table", function()
    local e = asyncio.InvalidStateError("x")
    assert.are.equal(e, raises(error, e))
  end)

  it("the core raises instances of them", function()
    local f = Future()
    f:set_result(1)
    local e = raises(f.set_result, f, 2)
    assert.is_true(asyncio.InvalidStateError:is(e))
    assert.are.equal("InvalidStateError", e.type)
    assert.matches("stack traceback", e.traceback)
  end)

  it("a class prints as its name", function()
    assert.matches("TimeoutError", tostring(asyncio.TimeoutError))
  end)
end)

-- What a traceback must show: a string that starts as luaL_traceback's and has each of
-- `frames` ("core_errors_spec.lua:LINE: in upvalue 'name'"), found as plain text.
local function assert_traceback_has(tb, frames)
  assert.are.equal("string", type(tb), "no traceback")
  assert.matches("^stack traceback:\n\t", tb)
  for _, expected in ipairs(frames) do
    assert.is_truthy(tb:find(expected, 1, true), "missing \"" .. expected .. "\" in:\n" .. tb)
  end
end

local function here() return debug.getinfo(2, "l").currentline end
local function frame(line, how) return "core_errors_spec.lua:" .. line .. ": in " .. how end

describe("tracebacks", function()
  it("a CancelledError caught deep in user code names the user's functions and lines", function()
    local caught, lines = nil, {}
    local sleeper = {}
    function sleeper:sleep_here()
      lines.sleep = here(); local _, e = pcall(await, sleep(3600))
      caught = e
      error(e, 0)
    end
    local function call_the_method()
      lines.method = here(); sleeper:sleep_here()
    end
    local function deep_in_user_code()
      lines.deep = here(); call_the_method()
    end
    local t = create_task(function() deep_in_user_code() end)
    support.tick()
    t:cancel()
    assert.is_true(asyncio.CancelledError:is(raises(await, t)))
    assert.is_true(asyncio.CancelledError:is(caught))
    assert_traceback_has(caught.traceback, {
      frame(lines.sleep, "method 'sleep_here'"),
      frame(lines.method, "upvalue 'call_the_method'"),
      frame(lines.deep, "upvalue 'deep_in_user_code'"),
    })
  end)

  -- in a task, where await runs fs.stat's body in place (a top-level await runs it as a
  -- task of its own, whose stack is all the traceback can show)
  it("an OSError from a failed call deep in user code names the user's functions and lines",
    support.in_task(function()
    local lines = {}
    local function stat_missing_file()
      lines.stat = here(); local st = await(asyncio.fs.stat("/nonexistent/alua/core_errors_spec"))
      return st
    end
    local function deep_in_user_code()
      lines.deep = here(); local st = stat_missing_file()
      return st
    end
    local e = raises(deep_in_user_code)
    assert.is_true(asyncio.OSError:is(e))
    assert.are.equal("ENOENT", e.errno)
    assert_traceback_has(e.traceback, {
      frame(lines.stat, "upvalue 'stat_missing_file'"),
      frame(lines.deep, "function <"),
    })
  end))

  it("a global function is named as one, a main chunk as such", function()
    local out = support.run_alua([[
function make_it_globally() return asyncio.QueueFull("x") end
print(make_it_globally().traceback)
]])
    assert.matches(":1: in function 'make_it_globally'\n", out)
    assert.matches(":2: in main chunk\n", out)
  end)

  it("a deep stack shows its first 10 and last 11 frames and how many it left out", function()
    local tb, depth
    local function recurse(n)
      if n == 0 then
        depth = 0
        while debug.getinfo(depth + 1, "l") do depth = depth + 1 end
        tb = asyncio.QueueFull("deep").traceback
        return
      end
      recurse(n - 1)
    end
    recurse(40)
    local _, shown = tb:gsub("\n\t[^.][^\n]*", "")
    assert.are.equal(21, shown, tb)
    assert.matches("\n\t%.%.%.\t%(skipping " .. (depth - 21) .. " levels%)\n", tb)
    assert.matches("^stack traceback:\n\t[^\n]*: in upvalue 'recurse'", tb)
  end)
end)

describe(":is()", function()
  it("is false for other classes' instances", function()
    local t = asyncio.TimeoutError("t")
    assert.is_false(asyncio.CancelledError:is(t))
    assert.is_false(asyncio.OSError:is(t))
    assert.is_false(asyncio.TimeoutError:is(asyncio.CancelledError()))
  end)

  it("is false for strings, nil, numbers, plain tables and look-alikes", function()
    for _, v in ipairs { "TimeoutError", "TimeoutError: x", 42, true, {},
      { type = "TimeoutError", message = "fake" } } do
      assert.is_false(asyncio.TimeoutError:is(v), tostring(v))
    end
    assert.is_false(asyncio.TimeoutError:is(nil))
    assert.is_false(asyncio.TimeoutError:is(setmetatable({ type = "TimeoutError" }, {})))
    assert.is_false(asyncio.TimeoutError:is(asyncio.TimeoutError), "the class is no instance")
  end)

  it("returns a boolean", function()
    assert.are.equal(true, asyncio.QueueFull:is(asyncio.QueueFull()))
    assert.are.equal(false, asyncio.QueueFull:is("QueueFull"))
  end)
end)

describe("OSError and its kinds", function()
  it("ConnectionError and BrokenPipeError are OSErrors; the reverse is false", function()
    local c = asyncio.ConnectionError("refused", { errno = "ECONNREFUSED", syscall = "connect" })
    local b = asyncio.BrokenPipeError("pipe", { errno = "EPIPE", syscall = "write" })
    assert.is_true(asyncio.OSError:is(c))
    assert.is_true(asyncio.OSError:is(b))
    assert.is_true(asyncio.ConnectionError:is(c))
    assert.is_false(asyncio.ConnectionError:is(b))
    assert.is_false(asyncio.BrokenPipeError:is(c))
    local o = asyncio.OSError("no such file", { errno = "ENOENT", syscall = "open" })
    assert.is_false(asyncio.ConnectionError:is(o))
    assert.is_false(asyncio.BrokenPipeError:is(o))
    assert.are.equal("ConnectionError", c.type)
    assert.are.equal("ECONNREFUSED", c.errno)
    assert.are.equal("connect", c.syscall)
    assert.are.equal("ENOENT", o.errno)
  end)

  it("other classes are not OSErrors", function()
    assert.is_false(asyncio.OSError:is(asyncio.SSLError("x")))
    assert.is_false(asyncio.OSError:is(asyncio.TimeoutError("x")))
  end)
end)

describe("errors crossing tasks", function()
  it("user errors pass through a task unchanged: strings, tables, numbers, booleans", function()
    local tbl = { code = 1 }
    local obj = setmetatable({}, { __tostring = function() return "obj" end })
    for _, v in ipairs { "plain", tbl, obj, 42, false } do
      local t = create_task(function() await(sleep(0)); error(v, 0) end)
      local got = raises(await, t)
      assert.are.equal(v, got)
      assert.are.equal(v, t:exception())
    end
  end)

  it("asyncio error instances pass through unchanged", function()
    local e = asyncio.QueueEmpty("empty")
    local t = create_task(function() error(e) end)
    assert.are.equal(e, raises(await, t))
    local outer = create_task(function() await(create_task(function() error(e) end)) end)
    assert.are.equal(e, raises(await, outer))
  end)

  it("an error instance made in a failing task keeps that task's traceback", function()
    local function deep_in_the_inner_task()
      error(asyncio.TimeoutError("inner"))
    end
    local inner = create_task(function() await(sleep(0)); deep_in_the_inner_task() end)
    local outer = create_task(function() return await(inner) end)
    local e = raises(await, outer)
    assert.matches("deep_in_the_inner_task", e.traceback)
  end)

  it("a task's exception() is the value it raised", function()
    local t = create_task(function() error({ "x" }) end)
    pcall(await, t)
    assert.are.same({ "x" }, t:exception())
  end)
end)
