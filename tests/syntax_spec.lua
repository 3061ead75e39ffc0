-- syntax_spec.lua — the keyword transform (API.md §1 "Keyword syntax"): every form, the
-- words' plain meanings, strings and comments, nesting, line numbers, errors, and the
-- loaders that apply it (load, loadfile, dofile, require).

local translate = alua.syntax.translate

-- the translation of src, which must succeed
local function tr(src, chunkname)
  local out, err = translate(src, chunkname)
  assert(out, err)
  return out
end

-- the error message for src, which must fail
local function err_of(src, chunkname)
  local out, err = translate(src, chunkname)
  assert.is_nil(out, "expected an error for: " .. src)
  return err
end

local function lines(s)
  return select(2, s:gsub("\n", "")) + 1
end

local function same(src)
  assert.are.equal(src, tr(src))
end

local function tmpfile(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(text)
  f:close()
  return name
end

describe("async function", function()
  it("NAME becomes an assignment of async(function ...) with the name", function()
    assert.are.equal('foo = async(function(a, b) return a + b end, "foo")',
      tr("async function foo(a, b) return a + b end"))
  end)

  it("dotted names keep their path", function()
    assert.are.equal('a.b.c = async(function() end, "a.b.c")', tr("async function a.b.c() end"))
  end)

  it("a:m gets self as first parameter and is named a:m", function()
    assert.are.equal('a.b.m = async(function(self, x, ...) end, "a.b:m")',
      tr("async function a.b:m(x, ...) end"))
    assert.are.equal('obj.m = async(function(self) end, "obj:m")', tr("async function obj:m() end"))
    assert.are.equal('obj.m = async(function(self ) end, "obj:m")', tr("async function obj:m( ) end"))
  end)

  it("local async function is recursive like local function", function()
    assert.are.equal('local f; f = async(function(n) return f(n) end, "f")',
      tr("local async function f(n) return f(n) end"))
  end)

  it("the expression form wraps the function", function()
    assert.are.equal("local g = async(function(x) return x end)",
      tr("local g = async function(x) return x end"))
    assert.are.equal("t = { async(function() end), k = async(function() end) }",
      tr("t = { async function() end, k = async function() end }"))
    assert.are.equal("f(async(function() end), 1)", tr("f(async function() end, 1)"))
    assert.are.equal("return async(function() end)", tr("return async function() end"))
  end)

  it("keeps comments and line breaks inside the header", function()
    assert.are.equal('a.b = async(function --[[x]] \n(y) end, "a.b")',
      tr("async function --[[x]] a\n.b(y) end"))
  end)

  it("finds its end through every kind of block", function()
    local src = [[
async function f(x)
  if x then local a = 1 elseif x == 2 then do end else end
  while x do break end
  for i = 1, 2 do end
  for k, v in pairs({}) do end
  repeat local r = 1 until r
  local g = function() return function() end end
  local function h() end
  local t = { function() end, [1] = function() if x then end end }
  return g
end
print(1)]]
    local out = tr(src)
    assert.are.equal(src:gsub("^async function f", "f = async(function")
                        :gsub("return g\nend", 'return g\nend, "f")'), out)
  end)

  it("nests in plain functions, async functions and table constructors", function()
    assert.are.equal(
      'function outer() local inner; inner = async(function() x = async(function() end) end, "inner") end',
      tr("function outer() local async function inner() x = async function() end end end"))
    assert.are.equal('M.a = async(function() M.b = async(function() end, "M.b") end, "M.a")',
      tr("async function M.a() async function M.b() end end"))
  end)

  it("two on one line", function()
    assert.are.equal('f = async(function() end, "f") g = async(function() end, "g")',
      tr("async function f() end async function g() end"))
  end)
end)

describe("await EXPR", function()
  it("wraps a name and all its suffixes", function()
    -- a call of a name or a dotted chain becomes await(await, f)( args): see "await f(args)"
    assert.are.equal('await(await, asyncio.sleep)(1)', tr("await asyncio.sleep(1)"))
    assert.are.equal("local line = await(reader:readline())", tr("local line = await reader:readline()"))
    assert.are.equal("local a, b = await(t)", tr("local a, b = await t"))
    assert.are.equal('x = await(a.b[k]:m("s"){1}"t"[[u]].c)',
      tr('x = await a.b[k]:m("s"){1}"t"[[u]].c'))
    assert.are.equal("x = await(f {1}) + await(g 's')", tr("x = await f {1} + await g 's'"))
  end)

  it("binds tighter than binary operators", function()
    assert.are.equal("x = await(a) + await(b) .. c", tr("x = await a + await b .. c"))
    assert.are.equal('if await(await, ok)() and not await(await, bad)() then end',
      tr("if await ok() and not await bad() then end"))
  end)

  it("nests: await await x, and awaits inside the operand's arguments", function()
    assert.are.equal("return await(await(x))", tr("return await await x"))
    assert.are.equal('print(await(await, f)(await(await, g)(), await(h[await(k)])))',
      tr("print(await f(await g(), await h[await k]))"))
  end)

  it("takes arguments that span lines, and suffixes on later lines as Lua does", function()
    local src = "local r = await gather(\n  a(),\n  b())\nprint(r)"
    assert.are.equal('local r = await(await, gather)(\n  a(),\n  b())\nprint(r)', tr(src))
    assert.are.equal('x = await(await, f\n)(y)', tr("x = await f\n(y)"))
    assert.are.equal("x = await(f\n(y).z)", tr("x = await f\n(y).z"))
  end)

  it("takes keyword-led operands", function()
    assert.are.equal("await(nil)", tr("await nil"))
    assert.are.equal("x = await(true) or false", tr("x = await true or false"))
    assert.are.equal("await(function() return 1 end)", tr("await function() return 1 end"))
    assert.are.equal("await(async(function() end))", tr("await async function() end"))
    assert.are.equal("await(async(f))", tr("await async(f)"))
  end)

  it("works in every kind of block and expression position", function()
    local src = [[
async function f(n)
  if await p(n) then return await q() elseif await r() then end
  while await p() do await s() end
  for i = await a(), await b() do end
  for k, v in await it() do end
  repeat await s() until await p()
  local t = { await a(), k = await b(), [await c()] = 1 }
  return (await a()), -await b(), #await c()
end]]
    assert.are.equal([[
f = async(function(n)
  if await(await, p)(n) then return await(await, q)() elseif await(await, r)() then end
  while await(await, p)() do await(await, s)() end
  for i = await(await, a)(), await(await, b)() do end
  for k, v in await(await, it)() do end
  repeat await(await, s)() until await(await, p)()
  local t = { await(await, a)(), k = await(await, b)(), [await(await, c)()] = 1 }
  return (await(await, a)()), -await(await, b)(), #await(await, c)()
end, "f")]], tr(src))
  end)

  it("inside function arguments, function bodies and methods in the operand", function()
    assert.are.equal('await(await, run)(function() local x = await(y) return (x) end, {await(z)})',
      tr("await run(function() local x = await y return (x) end, {await z})"))
  end)
end)

describe("await f(args): an async function called without a coroutine object", function()
  local support = require "tests.support"

  -- loads src (keyword syntax) as a chunk and runs it in a task; returns its results
  local function run(src, ...)
    local chunk = assert(load(src, "=fast"))
    return await(asyncio.create_task(chunk, ...))
  end

  it("is what the transform makes of a call of a name or a dotted chain, and only that", function()
    assert.are.equal('await(await, f)()', tr("await f()"))
    assert.are.equal('await(await, a.b.c)(1, 2)', tr("await a.b.c(1, 2)"))
    assert.are.equal("await(o:m(1))", tr("await o:m(1)"))        -- methods: the coroutine object
    assert.are.equal("await(f(1)(2))", tr("await f(1)(2)"))      -- the call's result is called
    assert.are.equal("await(f(1).x)", tr("await f(1).x"))
    assert.are.equal('await(f"s")', tr('await f"s"'))
    assert.are.equal("await(t[1](x))", tr("await t[1](x)"))
    assert.are.equal('await(await, f)(--[[no args]])', tr("await f(--[[no args]])"))
    -- a comment between the name and its arguments stays where it was (an earlier form
    -- copied the callee's text: the fuzzer found the comment's line break copied too)
    assert.are.equal('x = await(await, f--[[c\n]])(1)', tr("x = await f--[[c\n]](1)"))
  end)

  it("not once the chunk may have its own await (a local, a parameter, an assignment)", function()
    assert.are.equal("local await = w\nx = await(f(1))", tr("local await = w\nx = await f(1)"))
    assert.are.equal('await(await, f)(1)\nawait = w\nx = await(f(1))',
      tr("await f(1)\nawait = w\nx = await f(1)"))
    assert.are.equal("local function g(await) end\nx = await(f(1))",
      tr("local function g(await) end\nx = await f(1)"))
  end)

  it("runs the body in the awaiting task, with every result, as the coroutine object would", function()
    local a, b, c, same_task = run([[
      local outer = asyncio.current_task()
      local async function three(x)
        await asyncio.sleep(0)
        return x, x + 1, asyncio.current_task() == outer
      end
      local t = { three = three }
      local a, b, same = await t.three(1)
      return a, b, select("#", await three(5)), same
    ]])
    assert.are.same({ 1, 2, 3, true }, { a, b, c, same_task })
  end)

  it("awaits what any other callable returns: a Future, a Task, a coroutine object", function()
    local x, y, z = run([[
      local function later(v) return asyncio.sleep(0.001, v) end
      local function task_of(v) return asyncio.create_task(function() return v end) end
      local g = async(function(v) return v end)
      local function coro(v) return g(v) end
      return await later("f"), await task_of("t"), await coro("c")
    ]])
    assert.are.same({ "f", "t", "c" }, { x, y, z })
  end)

  it("a nil or non-callable callee is an error at the caller's line", function()
    local ok, err = pcall(run, "local f\nlocal x = await f(1)")
    assert.is_false(ok)
    assert.are.equal("fast:2: attempt to call a nil value", err)
    ok, err = pcall(run, "local t = {f = 5}\n\nreturn await t.f()") -- a tail call
    assert.are.equal("fast:3: attempt to call a number value", err)
  end)

  it("errors pass through as with the coroutine object", function()
    local ok, err = pcall(run, [[
      local async function boom() await asyncio.sleep(0); error("boom") end
      return await boom()
    ]])
    assert.is_false(ok)
    assert.matches("fast:1: boom", err)
  end)

  -- `return await f()` stays a Lua tail call: the returning function's frame goes, so
  -- async recursion through it runs in constant stack as plain Lua's tail calls do (and
  -- an error in the awaited call names the line that called the returning function).
  -- A form that kept the frame (`return id(await f())`; parentheses would keep one
  -- result only) overflows Lua's stack here, at some 200,000 levels.
  it("return await f() stays a proper tail call: 300,000 levels in constant stack", function()
    assert.are.equal("return await(await, down)(n - 1)", tr("return await down(n - 1)"))
    local bottom, n = run([[
      local async function down(n)
        if n == 0 then return "bottom", n end
        return await down(n - 1)
      end
      return await down(300000)
    ]])
    assert.are.same({ "bottom", 0 }, { bottom, n })
  end)

  it("a body run this way is cancelled where it waits, its <close> variables run", support.in_task(function()
    local closed, asleep = 0, asyncio.Event()
    local t = asyncio.create_task(assert(load([[
      local on_close, asleep = ...
      local async function sleeper()
        local c <close> = setmetatable({}, {__close = on_close})
        asleep:set()
        await asyncio.sleep(10)
      end
      await sleeper()
    ]], "=fast")), function() closed = closed + 1 end, asleep)
    await(asleep:wait())
    t:cancel()
    assert.is_true(asyncio.CancelledError:is(support.raises(await, t)))
    assert.are.equal(1, closed)
  end))

  it("at top level (no task) runs the coroutine as the main task, as before", function()
    local out, status = support.run_alua([[
      local async function who() await asyncio.sleep(0); return asyncio.current_task() ~= nil end
      print(await who())
    ]])
    assert.are.equal(0, status)
    assert.are.equal("true\n", out)
  end)

  it("await asyncio.sleep(d, ...) sleeps and returns the values, in a task and at top level", function()
    local a, b, zero = run([[
      local x, y = await asyncio.sleep(0.001, "a", "b")
      return x, y, select("#", await asyncio.sleep(0))
    ]])
    assert.are.same({ "a", "b", 0 }, { a, b, zero })
    local out, status = support.run_alua([[
      local t0 = asyncio.get_event_loop():time()
      local v = await asyncio.sleep(0.02, "slept")
      print(v, asyncio.get_event_loop():time() - t0 >= 0.02, asyncio.current_task())
      print(pcall(asyncio.sleep, -1))
    ]])
    assert.are.equal(0, status)
    assert.matches("^slept\ttrue\tnil\n", out)
  end)

  -- sleep_await arms the sleep itself: each delay as sleep's coroutine object takes it
  it("await asyncio.sleep of 0.0, of 0 with values, of a negative delay, of NaN and of math.huge", function()
    local v, n, order = run([[
      local log = {}
      asyncio.create_task(function() log[#log + 1] = "other" end)
      log[#log + 1] = "before"
      await asyncio.sleep(0.0) -- yields once: the other task runs meanwhile
      log[#log + 1] = "after"
      return await asyncio.sleep(0, "v"), await asyncio.sleep(-1, "n"), table.concat(log, " ")
    ]])
    assert.are.same({ "v", "n", "before other after" }, { v, n, order })
    local ok, err = pcall(run, "return await asyncio.sleep(0 / 0)")
    assert.is_false(ok)
    assert.matches("sleep: delay is NaN", tostring(err))
    local forever = asyncio.create_task(assert(load("await asyncio.sleep(math.huge)", "=fast")))
    await(asyncio.sleep(0.01))
    assert.is_false(forever:done())
    forever:cancel()
    assert.is_false(pcall(await, forever))
    assert.is_true(forever:cancelled())
  end)

  it("await asyncio.sleep reaches sleep's C body without await_call, in a task or not", function()
    -- the one function whatever the context (await_call's answer depends on it): the body
    -- then calls it itself, so a sleeping task's thread keeps one CallInfo less
    -- (bench/sleeper_memory.lua)
    local outside = await(await, asyncio.sleep)
    assert.are.equal("function", type(outside))
    assert.are.equal(outside, await(await, asyncio.sleep))
    assert.are.equal(outside, run("return await(await, asyncio.sleep)"))
  end)

  it("await asyncio.sleep in a plain callback of the running loop is the not-inside-a-task error", support.in_task(function()
    local done = asyncio.Future()
    asyncio.get_running_loop():call_soon(assert(load([[
      local done = ...
      done:set_result(select(2, pcall(function() return await asyncio.sleep(0.01) end)))
    ]], "=fast")), done)
    assert.matches("not inside a task", tostring(await(done)))
  end))

  it("await asyncio.sleep: a sleeping task is cancelled where it sleeps", support.in_task(function()
    local t = asyncio.create_task(assert(load("await asyncio.sleep(10)", "=fast")))
    await(asyncio.sleep(0))
    t:cancel("stop")
    local err = support.raises(await, t)
    assert.is_true(asyncio.CancelledError:is(err))
  end))

  it("await given await itself hands back what to call; other plain calls are unchanged", function()
    assert.are.equal("function", type(await(await, print)))
    assert.matches("expected a coroutine object, Task or Future, got nil",
      tostring(support.raises(await, nil)))
  end)
end)

describe("plain meanings stay", function()
  it("after . and :, as a table key, and as a plain call", function()
    for _, src in ipairs {
      "M.await(x)", "obj:await(x)", "t.async = f", "x = t.await", "M.async(f)",
      "t = { await = 1, async = 2 }", "await(x)", 'await "s"', "await { 1 }", "async(f)",
      'async "s"', "async { }", "x = t [await]",
    } do same(src) end
  end)

  it("after local, function, goto and ::", function()
    for _, src in ipairs {
      'local await = require "x"', "local async, await = 1, 2", "local function await() end",
      "function async(f) return f end", "function M.await(x) end", "goto await", "::await::",
      "local await <const> = 1",
    } do same(src) end
  end)

  it("where plain Lua would be valid", function()
    for _, src in ipairs {
      "await = 3", "await.x = 1", "await, b = 1, 2", "x = await + 1", "x = await - y",
      "x = await .. s", "return await", "if await then end", "while await do end",
      "for await in pairs(t) do end", "for await = 1, 2 do end", "function f(async, await) end",
      "f(await, async)", "x = { await }", "x = await == async", "x = await[1]",
      "return async and await or nil", "x = await;", "x = await end",
    } do same(src) end
  end)

  it("before a line break", function()
    same("x = await\nf()")
    same("local a = async\nfunction f() end")
    same("x = await --[[ a\n comment ]] f()")
  end)

  it("inside strings and comments", function()
    for _, src in ipairs {
      '"await x"', "'async function f() end'", "[[await x]]", "[==[ await x ]] async f ]==]",
      "-- await x", "--[[ async function ]] x = 1", "--[==[\nawait x\n]]\n]==]",
      [[s = "\"await x"]], "s = 'a\\\nawait x'", "s = \"a\\z\n   await x\"",
      "s = [=[\nasync function f() end]=] -- await y",
    } do same(src) end
  end)

  it("in whole programs that use the words as names", function()
    local src = [[
local await = require("x").await
local M = { async = true }
function M.await(co, ...) return await(co, ...) end
function M:async(f) self.async = f return self end
local t = { await = M.await, ["async"] = M.async }
return t.await, M:async(print), await
]]
    same(src)
  end)
end)

describe("line numbers", function()
  it("the translation has the same lines as the source", function()
    local src = "async function f(a,\n  b)\n  local x = await g(\n    a,\n    b)\n  return await h\nend\n"
    local out = tr(src)
    assert.are.equal(lines(src), lines(out))
    assert.are.equal('f = async(function(a,\n  b)\n  local x = await(await, g)(\n    a,\n    b)\n  return await(h)\nend, "f")\n', out)
  end)

  it("errors and debug.getinfo point at the source's lines", function()
    local src = table.concat({
      "local M = {}",                                     -- 1
      "async function M.f(x)",                            -- 2
      "  await asyncio.sleep(0)",                         -- 3
      "  local line = debug.getinfo(1, 'l').currentline", -- 4
      "  if x then error('boom') end",                    -- 5
      "  return line",                                    -- 6
      "end",                                              -- 7
      "return M",                                         -- 8
    }, "\n")
    local M = assert(load(src, "=lines"))()
    assert.are.equal(4, await(M.f(false)))
    local ok, err = pcall(await, M.f(true))
    assert.is_false(ok)
    assert.are.equal("lines:5: boom", err)
  end)

  it("a syntax error after a transformed line is reported at its own line", function()
    local f, err = load("async function f()\n  await g()\nend\nx = = 1", "=t")
    assert.is_nil(f)
    assert.are.equal("t:4: unexpected symbol near '='", err)
  end)
end)

describe("errors", function()
  it("async before something that is not function", function()
    assert.are.equal("t:2: 'function' expected after 'async' near 'x'", err_of("y = 1\nasync x", "=t"))
    assert.are.equal("t:1: 'function' expected after 'async' near 'local'", err_of("async local f", "=t"))
    assert.are.equal("t:1: 'function' expected after 'async' near '42'", err_of("x = async 42", "=t"))
  end)

  it("async function without name, parameters or end", function()
    assert.are.equal("t:1: <name> expected near <eof>", err_of("async function", "=t"))
    assert.are.equal("t:1: '(' expected near <eof>", err_of("async function f", "=t"))
    assert.are.equal("t:1: '(' expected near '.'", err_of("local async function a.b() end", "=t"))
    assert.are.equal("t:1: '(' expected near '.'", err_of("async function a:b.c() end", "=t"))
    assert.are.equal("t:1: <name> expected near '('", err_of("async function a.() end", "=t"))
    assert.are.equal("t:1: 'end' expected near <eof>", err_of("async function f()", "=t"))
    assert.are.equal("t:3: 'end' expected (to close 'function' at line 1) near <eof>",
      err_of("async function f()\n  return 1\n", "=t"))
  end)

  it("a named async function where an expression is expected", function()
    assert.are.equal("t:1: '(' expected near 'f'", err_of("x = async function f() end", "=t"))
  end)

  it("await before something that cannot start an expression", function()
    assert.are.equal("t:1: expression expected after 'await' near 'local'", err_of("x = await local y", "=t"))
    assert.are.equal("t:1: expression expected after 'await' near '5'", err_of("x = await 5", "=t"))
    assert.are.equal("t:1: expression expected after 'await' near 'not'", err_of("x = await not y", "=t"))
  end)

  it("an await operand cut short", function()
    assert.are.equal("t:1: <name> expected near <eof>", err_of("await t.", "=t"))
    assert.are.equal("t:1: <name> expected near '('", err_of("await t:(1)", "=t"))
    assert.are.equal("t:1: function arguments expected near '+'", err_of("x = await t:m + 1", "=t"))
  end)

  it("names the chunk as Lua does", function()
    assert.are.equal([[[string "async x"]:1: 'function' expected after 'async' near 'x']], err_of("async x"))
    assert.are.equal([[[string "y = 1..."]:2: 'function' expected after 'async' near 'x']],
      err_of("y = 1\nasync x"))
    assert.are.equal("file.lua:1: 'function' expected after 'async' near 'x'", err_of("async x", "@file.lua"))
    assert.are.equal("stdin:1: 'function' expected after 'async' near 'x'", err_of("async x", "=stdin"))
    local long = "async x --" .. ("-"):rep(60)
    assert.are.equal('[string "' .. long:sub(1, 45) .. '..."]:1: ' ..
      "'function' expected after 'async' near 'x'", err_of(long))
    assert.are.equal("..." .. ("d/"):rep(40):sub(-56) .. ":1: 'function' expected after 'async' near 'x'",
      err_of("async x", "@" .. ("d/"):rep(40)))
  end)

  it("load returns nil and the same message", function()
    local f, err = load("async x", "=t")
    assert.is_nil(f)
    assert.are.equal("t:1: 'function' expected after 'async' near 'x'", err)
  end)
end)

describe("chunks", function()
  it("binary chunks pass through unchanged", function()
    local dump = string.dump(function() return 42 end)
    assert.are.equal(dump, tr(dump))
    assert.are.equal(42, assert(load(dump, "d", "b"))())
  end)

  it("a first line starting with # is left alone", function()
    assert.are.equal("#!/usr/bin/env alua await x\nawait(y)", tr("#!/usr/bin/env alua await x\nawait y"))
  end)

  it("the output is the input itself when nothing is transformed", function()
    local src = ("local x = 1 -- await\n"):rep(100)
    assert.are.equal(src, tr(src))
  end)
end)

describe("loaders", function()
  local M = { src = "async function M.twice(x)\n  await asyncio.sleep(0)\n  return 2 * x\nend\n" }

  it("load translates string chunks and reader functions, and keeps env", function()
    local env = { asyncio = asyncio, async = async, await = await, M = {} }
    assert(load(M.src, "=m", "t", env))()
    assert.are.equal(42, await(env.M.twice(21)))
    local pieces, i = { "async function M.twice(x) ", "return ", "3 * x end" }, 0
    assert(load(function() i = i + 1 return pieces[i] end, "=m", "t", env))()
    assert.are.equal(63, await(env.M.twice(21)))
  end)

  it("load keeps its conventions", function()
    local f, err = load("x = 1", "=t", "b")
    assert.is_nil(f)
    assert.matches("attempt to load a text chunk %(mode is 'b'%)", err)
    f, err = load(function() return {} end)
    assert.is_nil(f)
    assert.matches("reader function must return a string", err)
    f, err = load(function() error("oops") end)
    assert.is_nil(f)
    assert.matches("oops", err)
    assert.are.equal(7, load("return 7")())
  end)

  it("loadfile and dofile translate files, keep line numbers past a #! line", function()
    local name = tmpfile("#!/usr/bin/env alua\nlocal M = {}\n" .. M.src ..
      "function M.line() return debug.getinfo(1, 'l').currentline end\nreturn M\n")
    local m = assert(loadfile(name))()
    assert.are.equal(8, await(m.twice(4)))
    assert.are.equal(7, m.line())
    m = dofile(name)
    assert.are.equal(8, await(m.twice(4)))
    os.remove(name)
  end)

  it("loadfile reports files it cannot open, and syntax errors with the file name", function()
    local f, err = loadfile("/nonexistent/x.lua")
    assert.is_nil(f)
    assert.are.equal("cannot open /nonexistent/x.lua: No such file or directory", err)
    local name = tmpfile("\n\nasync x\n")
    f, err = loadfile(name)
    assert.is_nil(f)
    assert.are.equal(name .. ":3: 'function' expected after 'async' near 'x'", err)
    local ok, derr = pcall(dofile, name)
    assert.is_false(ok)
    assert.are.equal(err, derr)
    os.remove(name)
  end)

  it("require finds Lua modules on package.path and translates them", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/kwmod.lua", "w"))
    f:write("local M = {}\n", M.src, "return M\n")
    f:close()
    f = assert(io.open(dir .. "/kwbad.lua", "w"))
    f:write("async x\n")
    f:close()
    local path = package.path
    package.path = dir .. "/?.lua;" .. path
    local m = require "kwmod"
    local ok, err = pcall(require, "kwbad")
    local ok2, err2 = pcall(require, "kwmissing")
    package.path = path
    package.loaded.kwmod = nil
    os.remove(dir .. "/kwmod.lua")
    os.remove(dir .. "/kwbad.lua")
    os.remove(dir)
    assert.are.equal(10, await(m.twice(5)))
    assert.is_false(ok)
    assert.matches("error loading module 'kwbad' from file '" .. dir:gsub("%p", "%%%0") ..
      "/kwbad.lua':\n\t.-kwbad.lua:1: 'function' expected after 'async' near 'x'", err)
    assert.is_false(ok2)
    assert.matches("module 'kwmissing' not found:", err2)
    assert.matches("\n\tno file '" .. dir:gsub("%p", "%%%0") .. "/kwmissing.lua'", err2)
  end)

  it("alua is a module too", function()
    assert.are.equal(alua, require "alua")
    assert.are.equal("function", type(alua.syntax.translate))
  end)
end)

describe("alua --no-keywords", function()
  local bin = os.getenv("ALUA_BIN")

  local function run(args)
    local p = assert(io.popen(bin .. " " .. args .. " 2>&1"))
    local out = p:read("a")
    p:close()
    return out
  end

  it("turns the transform off for scripts and load, not for alua.syntax.translate", function()
    if not bin then pending("ALUA_BIN not set") return end
    assert.are.equal("true\tawait(x)\n",
      run([[--no-keywords -e "print(load('y = await x') == nil, alua.syntax.translate('await x'))"]]))
    assert.matches("syntax error", run([[--no-keywords -e "y = await x"]]))
    assert.are.equal("ok\n", run([[-e "local f = async function() end print('ok')"]]))
  end)
end)
