-- asyncio.lua — builds the asyncio module from the C core and the Lua parts.
local core = ...

local M = {}

-- await(x): a coroutine object runs inline: coro_begin hands back its function and
-- arguments and the call below is a tail call, so chains of async calls use Lua stack,
-- not C stack (recursion as deep as plain Lua's). Everything else goes straight to the
-- C half, which returns results at once or suspends the task. await(await, f) is the
-- keyword transform's `await f(args)` (below).
local await_step, coro_begin, CORO_MT = core.await_step, core.coro_begin, core._coro_mt
local await_yield_once = core.await_yield_once
local YIELD_ONCE = core.sleep(0) -- the one object sleep(0) returns: skip the metatable test
-- debug.getmetatable skips getmetatable's look-up of a __metatable field (a third of the
-- cost of an await of a Future); none of these metatables has one, so both agree
local getmetatable = debug and debug.getmetatable or getmetatable

local function call(fn, ...)
  return fn(...)
end

-- await(await, f): what the keyword transform makes of `await f(args)` (f a name or a
-- dotted chain), as `await(await, f)(args)`: await given itself (never an awaitable)
-- hands f to await_call (async/core/await.c), which returns what to call with the
-- arguments: inside a task an async function's body itself, run without making the
-- coroutine object f(args); else this closure.
-- `await asyncio.sleep(d)`, the commonest, skips await_call: sleep_await is called by the
-- awaiting body itself (one C frame fewer below a sleeping task: a CallInfo less per
-- sleeper) and does the top-level await itself outside a task.
local await
local await_call = core.make_await_call(function(f)
  return function(...) return await(f(...)) end
end)
local SLEEP, sleep_await = core.sleep, core.sleep_await

function await(x, f)
  if x == YIELD_ONCE then return await_yield_once() end
  if x == await then
    if f == SLEEP then return sleep_await end
    return await_call(f)
  end
  if getmetatable(x) == CORO_MT then return call(coro_begin(x)) end
  return await_step(x)
end
M.await = await

M.async = core.async
M.iscoroutinefunction = core.iscoroutinefunction
M.iscoroutine = core.iscoroutine
M.Future = core.Future
M.sleep = core.sleep
M.create_task = core.create_task
M.ensure_future = core.ensure_future
M.current_task = core.current_task
M.all_tasks = core.all_tasks
M.get_running_loop = core.get_running_loop
M.get_event_loop = core.get_running_loop
M.run_until_complete = core.run_until_complete
M.is_error = core.is_error
M._run_loop = core._run_loop

for _, name in ipairs { "CancelledError", "TimeoutError", "InvalidStateError", "QueueEmpty",
  "QueueFull", "QueueShutDown", "IncompleteReadError", "LimitOverrunError", "OSError",
  "ConnectionError", "BrokenPipeError", "SSLError", "ExceptionGroup", "ProtocolError" } do
  M[name] = core[name]
end

M.FIRST_COMPLETED = "FIRST_COMPLETED"
M.FIRST_EXCEPTION = "FIRST_EXCEPTION"
M.ALL_COMPLETED = "ALL_COMPLETED"

-- The Lua parts, in import order: this list is the one place the order is written.
-- part(name, imports) runs stdlib/asyncio/<name>.lua with the C core, the module as the
-- parts above have built it (each may use their exports) and `imports`, what it takes
-- from an earlier part besides the module's public names; the part returns its exports,
-- added to the module here, and what it shares with later parts. No part reaches another
-- through the core table.
local function part(name, imports)
  local exports, shared = core.load_part("asyncio." .. name, core, M, imports)
  for k, v in pairs(exports) do M[k] = v end
  return shared
end

part("tasks")
local locks = part("locks") -- shares fifo, its waiter lists, and what each waiter waits on
part("queues", { fifo = locks.fifo, waiting_on = locks.waiting_on })
part("taskgroups")
part("timeouts")
part("signals")
part("fs")
local tls = part("tls") -- shares the ssl option's contexts and handshakes
local streams = part("streams", { tls = tls }) -- shares make_streams and lookup
part("subprocess", { make_streams = streams.make_streams, waiting_on = locks.waiting_on })
part("contextvars")
part("debug", { waiting_on = locks.waiting_on }) -- after signals: SIGQUIT in debug mode
part("workers")

-- asyncio.socket (LuaSocket's API, also `require "asyncio.socket"`): loaded when first
-- asked for, as Python's lazily imported submodules; the last part, it resolves names
-- with streams' lookup
local function load_socket()
  local socket = core.load_part("asyncio.socket", core, M, { lookup = streams.lookup })
  rawset(M, "socket", socket)
  return socket
end
if package then
  package.preload["asyncio.socket"] = function()
    return rawget(M, "socket") or load_socket()
  end
end

-- asyncio.http (also `require "asyncio.http"`): loaded when first asked for too
local function load_http()
  local http = core.load_part("asyncio.http", core, M)
  rawset(M, "http", http)
  return http
end
if package then
  package.preload["asyncio.http"] = function()
    return rawget(M, "http") or load_http()
  end
end

setmetatable(M, { __index = function(_, k)
  if k == "socket" then return load_socket() end
  if k == "http" then return load_http() end
end })

return M
