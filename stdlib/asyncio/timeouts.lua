-- timeouts.lua — timeout scopes: at the deadline the task is cancelled, and leaving the
-- scope turns that cancellation (told apart from others by the task's cancel count)
-- into TimeoutError. with_timeout(delay, fn, ...) is the same scope around a function.
-- The deadline is a handle that cancels the task from C (core._cancel_at), not a Lua
-- callback: a callback's own call can fail for memory, and the deadline with it.
local core, asyncio = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local await, async = asyncio.await, asyncio.async
local current_task, get_running_loop = asyncio.current_task, asyncio.get_running_loop
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError
local iscoroutinefunction = asyncio.iscoroutinefunction
local setmetatable, getmetatable, error, type, tostring = setmetatable, getmetatable, error, type, tostring

local cancel_at, fired = core._cancel_at, core._fired
local TOP_LEVEL = core._top_level -- the parent outside every task (async/toplevel.c)

-- States: "active" (entered), "expiring" (fired, scope not left yet), "expired",
-- "finished" (left before the deadline).
local Timeout = { __name = "Timeout" }
Timeout.__index = Timeout

-- The state, "active" turning "expiring" once the deadline's handle has fired.
local function state(self)
  local handle = self._handle
  if handle and fired(handle) then
    self._handle = nil
    self._state = "expiring"
  end
  return self._state
end

local function check_when(fname, when, what)
  if when ~= nil and (type(when) ~= "number" or when ~= when) then
    arg_error(fname .. ": " .. what .. " must be a number of seconds or nil, got "
      .. (type(when) == "number" and "NaN" or core._describe(when)))
  end
end

local function schedule(self, when)
  self._when = when
  if self._handle then self._handle:cancel() end
  self._handle = nil
  if when == nil then return end
  local task = self._task
  self._handle = cancel_at(when, task ~= TOP_LEVEL and task or nil)
end

local function enter(fname, when)
  local task = current_task() or TOP_LEVEL
  local self = setmetatable({ _state = "active", _task = task, _cancelling = task:cancelling() }, Timeout)
  schedule(self, when)
  return self
end

-- timeout(delay): a scope for a <close> variable; nil: no deadline (see reschedule).
function M.timeout(delay)
  check_when("timeout", delay, "delay")
  return enter("timeout", delay and get_running_loop():time() + delay)
end

-- timeout_at(when): the same with an absolute deadline in loop:time()'s clock.
function M.timeout_at(when)
  check_when("timeout_at", when, "when")
  return enter("timeout_at", when)
end

local function check_self(self, fname)
  if getmetatable(self) ~= Timeout then core._self_error("Timeout", "timeout", fname:match(":(.*)$")) end
end

function Timeout:when()
  check_self(self, "Timeout:when")
  return self._when
end

-- reschedule(when): a new absolute deadline, or nil for none; only while active.
function Timeout:reschedule(when)
  check_self(self, "Timeout:reschedule")
  if state(self) ~= "active" then
    local article = self._state:find("^[aeiou]") and "an " or "a "
    arg_error("Timeout:reschedule: cannot change the deadline of " .. article .. self._state .. " timeout")
  end
  check_when("Timeout:reschedule", when, "when")
  schedule(self, when)
end

function Timeout:expired()
  check_self(self, "Timeout:expired")
  local now = state(self)
  return now == "expiring" or now == "expired"
end

function Timeout:__close(err)
  local now = state(self)
  if self._handle then
    self._handle:cancel()
    self._handle = nil
  end
  if now == "expiring" then
    self._state = "expired"
    -- only a cancellation that is ours (no other cancel request since the scope began)
    if self._task:uncancel() <= self._cancelling and CancelledError:is(err) then
      error(TimeoutError("timeout: the deadline passed", { cause = err }), 0)
    end
  elseif now == "active" then
    self._state = "finished"
  end
end

function Timeout:__tostring()
  if state(self) == "active" then
    return ("Timeout [active, when=%s]"):format(tostring(self._when))
  end
  return ("Timeout [%s]"):format(self._state)
end

local with_timeout_body = async(function(delay, fn, ...)
  local t <close> = M.timeout(delay)
  if iscoroutinefunction(fn) then return await(fn(...)) end
  return fn(...)
end, "with_timeout")

-- with_timeout(delay, fn, ...): an awaitable that runs fn(...) in a timeout scope and
-- returns its results, or raises TimeoutError.
function M.with_timeout(delay, fn, ...)
  check_when("with_timeout", delay, "delay")
  if type(fn) ~= "function" then arg_error("with_timeout: expected a function, got " .. type(fn)) end
  return with_timeout_body(delay, fn, ...)
end

return M
