-- taskgroups.lua — TaskGroup, a <close> scope that owns its child tasks: closing waits
-- for them all; the first failure cancels the rest and the body; failures come out as
-- one ExceptionGroup. task_group(fn) is the same scope around a function.
local core, asyncio = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local await, async, Future = asyncio.await, asyncio.async, asyncio.Future
local create_task, current_task = asyncio.create_task, asyncio.current_task
local CancelledError, ExceptionGroup = asyncio.CancelledError, asyncio.ExceptionGroup
local iscoroutine, iscoroutinefunction = asyncio.iscoroutine, asyncio.iscoroutinefunction
local setmetatable, getmetatable, error, pcall, type, next = setmetatable, getmetatable, error, pcall, type, next

local TaskGroup = { __name = "TaskGroup" }
TaskGroup.__index = TaskGroup

local function abort(self)
  self._aborting = true
  for t in next, self._tasks do
    if not t:done() then t:cancel() end
  end
end

local function on_task_done(self, task)
  self._tasks[task] = nil
  self._ntasks = self._ntasks - 1
  local waiter = self._on_completed
  if waiter and self._ntasks == 0 and not waiter:done() then waiter:set_result(true) end
  if task:cancelled() then return end
  local err = task:exception()
  if err == nil then return end
  local errors = self._errors
  errors[#errors + 1] = err
  if self._parent:done() then return end
  if not self._aborting and not self._parent_cancel_requested then
    -- stop the body where it is: its pending await raises CancelledError, which the
    -- scope's close turns back into "not cancelled" (uncancel)
    abort(self)
    self._parent_cancel_requested = true
    self._parent:cancel()
  end
end

-- TaskGroup(): held in a <close> variable; its parent is the task it is made in, or the
-- top level (a script's, the REPL's: async/toplevel.c), where await runs the loop.
local TOP_LEVEL = core._top_level

function M.TaskGroup()
  local parent = current_task() or TOP_LEVEL
  local self = setmetatable({
    _parent = parent, _tasks = {}, _ntasks = 0, _errors = {},
    _exiting = false, _aborting = false, _closed = false, _parent_cancel_requested = false,
  }, TaskGroup)
  self._on_task_done = function(task) on_task_done(self, task) end
  return self
end

-- An awaitable that will not run is consumed quietly (no "never awaited" warning).
local function discard(aw)
  if iscoroutine(aw) then create_task(aw):cancel() end
end

-- tg:create_task(aw, name?): aw is a coroutine object, a function (run with no
-- arguments) or another awaitable, as in asyncio.create_task.
function TaskGroup:create_task(aw, name)
  if getmetatable(self) ~= TaskGroup then
    core._self_error("TaskGroup", "tg", "create_task")
  end
  local why
  if self._closed or (self._exiting and self._ntasks == 0) then
    why = "the task group is finished (its scope was closed)"
  elseif self._aborting then
    why = "the task group is shutting down (a task failed or it was cancelled)"
  end
  if why then
    discard(aw)
    arg_error("TaskGroup:create_task: " .. why)
  end
  local task
  if type(aw) == "function" then
    task = create_task(aw)
    if name ~= nil then task:set_name(name) end
  else
    task = create_task(aw, name)
  end
  self._tasks[task] = true
  self._ntasks = self._ntasks + 1
  task:add_done_callback(self._on_task_done)
  return task
end

-- Leaving the scope (err: the error unwinding it, or nil): waits for every child, then
-- raises what the scope ends with.
function TaskGroup:__close(err)
  self._exiting = true
  local propagate = CancelledError:is(err) and err or nil
  if err ~= nil and not self._aborting then abort(self) end
  while self._ntasks > 0 do
    if self._on_completed == nil then self._on_completed = Future() end
    -- only a cancellation of the parent can interrupt this await
    local ok, cancel_err = pcall(await, self._on_completed)
    if not ok and not self._aborting then
      -- cancelled from outside while waiting: cancel the children, then re-raise
      propagate = cancel_err
      abort(self)
    end
    self._on_completed = nil
  end
  self._closed = true
  local parent, errors = self._parent, self._errors
  -- the group cancelled its parent only because a child failed: errors is not empty,
  -- and that cancellation is undone; a cancellation from outside raises if nothing failed
  if self._parent_cancel_requested then parent:uncancel() end
  if propagate ~= nil and #errors == 0 then error(propagate, 0) end
  if err ~= nil and not CancelledError:is(err) then errors[#errors + 1] = err end
  if #errors > 0 then
    -- a cancellation from outside was swallowed in favour of the group: request it
    -- again so that it is not lost
    if parent:cancelling() > 0 then
      parent:uncancel()
      parent:cancel()
    end
    error(ExceptionGroup(("unhandled errors in a TaskGroup (%d)"):format(#errors), { errors = errors }), 0)
  end
end

function TaskGroup:__tostring()
  local state = self._closed and "closed" or self._aborting and "cancelling" or "entered"
  return ("TaskGroup [%s, tasks=%d, errors=%d]"):format(state, self._ntasks, #self._errors)
end

local function call(fn, ...)
  if iscoroutinefunction(fn) then return await(fn(...)) end
  return fn(...)
end

local task_group_body = async(function(fn)
  local tg <close> = M.TaskGroup()
  return call(fn, tg)
end, "task_group")

-- task_group(fn): an awaitable that runs fn(tg) inside a TaskGroup scope and returns
-- fn's results once every child is done.
function M.task_group(fn)
  if type(fn) ~= "function" then
    arg_error("task_group: expected a function, got " .. type(fn))
  end
  return task_group_body(fn)
end

return M
