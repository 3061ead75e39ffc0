-- asyncio.lua — builds the asyncio module from the C core and the Lua parts.
local core = ...

local M = {}

-- await(x): the C half suspends or returns results; for a coroutine object inside a
-- task it hands back the function to run inline, called here as a tail call so that
-- deep chains of async calls use Lua stack, not C stack.
local await_step, INLINE = core.await_step, core._inline_tag

local function run_inline(fn, ...)
  return fn(...)
end

local function await_continue(...)
  if ... == INLINE then return run_inline(select(2, ...)) end
  return ...
end

function M.await(x)
  return await_continue(await_step(x))
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

return M
