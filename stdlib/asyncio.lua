-- asyncio.lua — builds the asyncio module from the C core and the Lua parts.
local core = ...

local M = {}

-- await(x): a coroutine object runs inline: coro_begin hands back its function and
-- arguments and the call below is a tail call, so chains of async calls use Lua stack,
-- not C stack (recursion as deep as plain Lua's). Everything else goes straight to the
-- C half, which returns results at once or suspends the task.
local await_step, coro_begin, CORO_MT = core.await_step, core.coro_begin, core._coro_mt
local await_yield_once = core.await_yield_once
local YIELD_ONCE = core.sleep(0) -- the one object sleep(0) returns: skip the metatable test
-- debug.getmetatable skips getmetatable's look-up of a __metatable field (a third of the
-- cost of an await of a Future); none of these metatables has one, so both agree
local getmetatable = debug and debug.getmetatable or getmetatable

local function call(fn, ...)
  return fn(...)
end

-- await_call(name, f, ...): what the keyword transform makes of `await f(...)` (f a name
-- or a dotted chain of names, its text in `name`), as `await(await)("f", f, ...)`: await
-- given itself (never a valid awaitable) hands it back, so the transformed code needs no
-- other name than await. Inside a task, an async function's
-- body is called here as a tail call, exactly as awaiting the coroutine object f(...)
-- would run it, without making that object (the costliest part of awaiting an async
-- function). Anything else is await(f(...)).
local async_body = core.async_body
local await_call

local function await(x)
  if x == YIELD_ONCE then return await_yield_once() end
  if x == await then return await_call end
  if getmetatable(x) == CORO_MT then return call(coro_begin(x)) end
  return await_step(x)
end
M.await = await

function await_call(name, f, ...)
  local body = async_body(f)
  if body then return body(...) end
  if body == false then error(("attempt to call a %s value ('%s')"):format(type(f), name), 2) end
  return await(f(...))
end

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
M._run_loop = core._run_loop

for _, name in ipairs { "CancelledError", "TimeoutError", "InvalidStateError", "QueueEmpty",
  "QueueFull", "QueueShutDown", "IncompleteReadError", "LimitOverrunError", "OSError",
  "ConnectionError", "BrokenPipeError", "SSLError", "ExceptionGroup" } do
  M[name] = core[name]
end

M.FIRST_COMPLETED = "FIRST_COMPLETED"
M.FIRST_EXCEPTION = "FIRST_EXCEPTION"
M.ALL_COMPLETED = "ALL_COMPLETED"

core.load_part("asyncio.tasks", core, M)
core.load_part("asyncio.locks", core, M)
core.load_part("asyncio.queues", core, M)
core.load_part("asyncio.taskgroups", core, M)
core.load_part("asyncio.timeouts", core, M)
core.load_part("asyncio.signals", core, M)
core.load_part("asyncio.fs", core, M)
core.load_part("asyncio.tls", core, M)
core.load_part("asyncio.streams", core, M)
core.load_part("asyncio.subprocess", core, M)

return M
