-- locks.lua — Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier: waiters
-- are Futures in FIFO order; a waiter cancelled after its wake-up passes it on.
local core, asyncio, imports = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local await, async, Future = asyncio.await, asyncio.async, asyncio.Future
local CancelledError, InvalidStateError = asyncio.CancelledError, asyncio.InvalidStateError
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local type, tostring, tointeger = type, tostring, math.tointeger
local current_task = asyncio.current_task

-- ---- waiter lists ------------------------------------------------------------------

-- A FIFO of waiters: array slots first..last. Waiters leave from the front when woken
-- and from anywhere when cancelled, which is rare, so removal may shift.
local Fifo = {}
Fifo.__index = Fifo

local function fifo()
  return setmetatable({ first = 1, last = 0 }, Fifo)
end

function Fifo:push(v)
  local last = self.last + 1
  self.last = last
  self[last] = v
end

function Fifo:len()
  return self.last - self.first + 1
end

-- Removes and returns the first waiter (nil when empty).
function Fifo:shift()
  local first = self.first
  if first > self.last then return nil end
  local v = self[first]
  self[first] = nil
  if first == self.last then
    self.first, self.last = 1, 0
  else
    self.first = first + 1
  end
  return v
end

-- Removes v wherever it is; false if it is not there.
function Fifo:remove(v)
  local first, last = self.first, self.last
  for i = first, last do
    if self[i] == v then
      if i == first then
        self:shift()
      else
        for j = i, last - 1 do self[j] = self[j + 1] end
        self[last] = nil
        self.last = last - 1
      end
      return true
    end
  end
  return false
end

-- waiter Future -> the Lock, Event, Queue... it waits on, or what it is in words
-- ("process 123 to exit"): how print_tasks (debug.lua) names what a task waits for.
-- Set only when a task really waits. Made by asyncio.lua (debug loads before this part).
local waiting_on = imports.waiting_on

-- Awaits a fresh waiter Future queued on `waiters` of `owner`, then takes it off the
-- queue whatever happened. Returns pcall's ok, err and the waiter.
local function wait_on(waiters, owner)
  local fut = Future()
  waiters:push(fut)
  waiting_on[fut] = owner
  local ok, err = pcall(await, fut)
  waiters:remove(fut)
  return ok, err, fut
end

-- True if the waiter was woken (set_result) rather than cancelled or still pending.
local function was_woken(fut)
  return fut:done() and not fut:cancelled()
end

local function class(name)
  local cls = { __name = name }
  cls.__index = cls
  return cls
end

local VAR = { Lock = "lock", Event = "event", Condition = "cond", Semaphore = "sem", BoundedSemaphore = "sem", Barrier = "barrier" } -- in "call it as lock:acquire()"

local function check_self(self, cls, fname)
  if getmetatable(self) ~= cls then
    core._self_error(cls.__name, VAR[cls.__name] or "obj", fname:match(":(.*)$"))
  end
end

-- ---- Lock --------------------------------------------------------------------------

local Lock = class("Lock")

-- Lock(): a mutual exclusion lock. `await(lock:acquire())` returns the lock, whose
-- __close releases it.
function M.Lock()
  return setmetatable({ _locked = false, _waiters = fifo() }, Lock)
end

local function all_cancelled(waiters)
  for i = waiters.first, waiters.last do
    if not waiters[i]:cancelled() then return false end
  end
  return true
end

local function lock_wake_first(waiters)
  local fut = waiters[waiters.first]
  if fut and not fut:done() then fut:set_result(true) end
end

-- A free lock is taken at once unless a woken waiter is about to take it (fairness).
Lock.acquire = async(function(self)
  check_self(self, Lock, "Lock:acquire")
  local waiters = self._waiters
  if not self._locked and all_cancelled(waiters) then
    self._locked, self._owner = true, current_task() -- the owner: for print_tasks
    return self
  end
  local ok, err = wait_on(waiters, self)
  if not ok then
    -- woken, then cancelled before running: hand the wake-up to the next waiter
    if not self._locked then lock_wake_first(waiters) end
    error(err, 0)
  end
  self._locked, self._owner = true, current_task()
  return self
end, "Lock.acquire")

function Lock:release()
  check_self(self, Lock, "Lock:release")
  if not self._locked then arg_error("Lock:release: the lock is not acquired") end
  self._locked, self._owner = false, nil
  lock_wake_first(self._waiters)
end

function Lock:locked()
  check_self(self, Lock, "Lock:locked")
  return self._locked
end

function Lock:__close()
  self:release()
end

function Lock:__tostring()
  local n = self._waiters:len()
  return ("Lock [%s%s]"):format(self._locked and "locked" or "unlocked",
    n > 0 and ", waiters:" .. n or "")
end

-- ---- Event -------------------------------------------------------------------------

local Event = class("Event")

-- Event(): set() wakes every waiter; wait() returns at once while it is set.
function M.Event()
  return setmetatable({ _value = false, _waiters = fifo() }, Event)
end

function Event:is_set()
  return self._value
end

function Event:set()
  if self._value then return end
  self._value = true
  local waiters = self._waiters
  for i = waiters.first, waiters.last do
    local fut = waiters[i]
    if not fut:done() then fut:set_result(true) end
  end
end

function Event:clear()
  self._value = false
end

Event.wait = async(function(self)
  check_self(self, Event, "Event:wait")
  if self._value then return true end
  local ok, err = wait_on(self._waiters, self)
  if not ok then error(err, 0) end
  return true
end, "Event.wait")

function Event:__tostring()
  local n = self._waiters:len()
  return ("Event [%s%s]"):format(self._value and "set" or "unset", n > 0 and ", waiters:" .. n or "")
end

-- ---- Condition ---------------------------------------------------------------------

local Condition = class("Condition")

-- Condition(lock?): waits for a notification while holding `lock` (a new Lock if nil).
function M.Condition(lock)
  if lock == nil then
    lock = M.Lock()
  elseif getmetatable(lock) ~= Lock then
    arg_error("Condition: expected an asyncio.Lock or nil, got " .. tostring(lock))
  end
  return setmetatable({ _lock = lock, _waiters = fifo() }, Condition)
end

Condition.acquire = async(function(self)
  check_self(self, Condition, "Condition:acquire")
  await(self._lock:acquire())
  return self
end, "Condition.acquire")

function Condition:release()
  check_self(self, Condition, "Condition:release")
  local lock = self._lock
  if not lock._locked then arg_error("Condition:release: the lock is not acquired") end
  lock:release()
end

function Condition:locked()
  return self._lock._locked
end

function Condition:__close()
  self:release()
end

local function notify(self, n)
  local waiters, woken = self._waiters, 0
  for i = waiters.first, waiters.last do
    if woken >= n then return end
    local fut = waiters[i]
    if not fut:done() then
      woken = woken + 1
      fut:set_result(false)
    end
  end
end

-- Releases the lock, waits for a notification, takes the lock back (even when
-- cancelled: the caller always leaves holding it). A notification that arrives for a
-- waiter that then fails (cancelled) goes to the next waiter.
Condition.wait = async(function(self)
  check_self(self, Condition, "Condition:wait")
  local lock = self._lock
  if not lock._locked then arg_error("Condition:wait: the lock is not acquired") end
  lock:release()
  local ok, err, fut = wait_on(self._waiters, self)
  while true do
    local got, aerr = pcall(await, lock:acquire())
    if got then break end
    if not CancelledError:is(aerr) then error(aerr, 0) end
    ok, err = false, aerr
  end
  if not ok then
    if was_woken(fut) then notify(self, 1) end
    error(err, 0)
  end
  return true
end, "Condition.wait")

Condition.wait_for = async(function(self, predicate)
  check_self(self, Condition, "Condition:wait_for")
  if type(predicate) ~= "function" and not (getmetatable(predicate) or {}).__call then
    arg_error("Condition:wait_for: the predicate must be a function, got " .. type(predicate))
  end
  local result = predicate()
  while not result do
    await(self:wait())
    result = predicate()
  end
  return result
end, "Condition.wait_for")

function Condition:notify(n)
  check_self(self, Condition, "Condition:notify")
  if not self._lock._locked then arg_error("Condition:notify: the lock is not acquired") end
  notify(self, n or 1)
end

function Condition:notify_all()
  check_self(self, Condition, "Condition:notify_all")
  if not self._lock._locked then arg_error("Condition:notify_all: the lock is not acquired") end
  notify(self, self._waiters:len())
end

function Condition:__tostring()
  local n = self._waiters:len()
  return ("Condition [%s%s]"):format(self._lock._locked and "locked" or "unlocked",
    n > 0 and ", waiters:" .. n or "")
end

-- ---- Semaphore, BoundedSemaphore -----------------------------------------------------

local Semaphore = class("Semaphore")
local BoundedSemaphore = class("BoundedSemaphore")

local function check_value(fname, value)
  if value == nil then return 1 end
  local n = type(value) == "number" and tointeger(value)
  if not n or n < 0 then
    arg_error(fname .. ": the initial value must be an integer >= 0, got " .. tostring(value))
  end
  return n
end

-- Semaphore(value = 1): acquire() waits while the counter is 0.
function M.Semaphore(value)
  return setmetatable({ _value = check_value("Semaphore", value), _waiters = fifo() }, Semaphore)
end

-- BoundedSemaphore(value = 1): release() beyond the initial value is an error.
function M.BoundedSemaphore(value)
  value = check_value("BoundedSemaphore", value)
  return setmetatable({ _value = value, _bound = value, _waiters = fifo() }, BoundedSemaphore)
end

local function is_semaphore(self)
  local mt = getmetatable(self)
  return mt == Semaphore or mt == BoundedSemaphore
end

local function sem_locked(self)
  if not is_semaphore(self) then core._self_error("Semaphore", "sem", "locked") end
  if self._value == 0 then return true end
  local waiters = self._waiters
  for i = waiters.first, waiters.last do
    if not waiters[i]:cancelled() then return true end
  end
  return false
end

-- Wakes the first waiter still waiting, taking a unit of the counter for it.
local function sem_wake_next(self)
  local waiters = self._waiters
  for i = waiters.first, waiters.last do
    local fut = waiters[i]
    if not fut:done() then
      self._value = self._value - 1
      fut:set_result(true)
      return true
    end
  end
  return false
end

local sem_acquire = async(function(self)
  if not is_semaphore(self) then core._self_error("Semaphore", "sem", "acquire") end
  if not sem_locked(self) then
    self._value = self._value - 1
    return self
  end
  local ok, err, fut = wait_on(self._waiters, self)
  -- woken (a unit was taken for us) but cancelled before running: give the unit back
  if not ok and was_woken(fut) then self._value = self._value + 1 end
  -- waiters that queued behind us for fairness may now proceed
  while self._value > 0 and sem_wake_next(self) do end
  if not ok then error(err, 0) end
  return self
end, "Semaphore.acquire")

local function sem_release(self)
  self._value = self._value + 1
  sem_wake_next(self)
end

local function sem_tostring(self)
  local n = self._waiters:len()
  local extra = sem_locked(self) and "locked" or "unlocked, value:" .. self._value
  return ("%s [%s%s]"):format(getmetatable(self).__name, extra, n > 0 and ", waiters:" .. n or "")
end

for _, cls in ipairs { Semaphore, BoundedSemaphore } do
  cls.acquire = sem_acquire
  cls.locked = sem_locked
  cls.__tostring = sem_tostring
  cls.__close = function(self) self:release() end
end

function Semaphore:release()
  check_self(self, Semaphore, "Semaphore:release")
  sem_release(self)
end

function BoundedSemaphore:release()
  check_self(self, BoundedSemaphore, "BoundedSemaphore:release")
  if self._value >= self._bound then
    arg_error("BoundedSemaphore:release: released too many times")
  end
  sem_release(self)
end

-- ---- Barrier -----------------------------------------------------------------------

-- States: "filling" (tasks arrive), "draining" (released tasks leave), "resetting"
-- (waiting tasks leave with an error), "broken" (aborted).
local Barrier = class("Barrier")

-- Barrier(parties): wait() blocks until `parties` tasks wait, then releases them all.
function M.Barrier(parties)
  local n = type(parties) == "number" and tointeger(parties)
  if not n or n < 1 then
    arg_error("Barrier: parties must be an integer > 0, got " .. tostring(parties))
  end
  return setmetatable({ parties = n, _cond = M.Condition(), _state = "filling", _count = 0 }, Barrier)
end

-- asyncio has no BrokenBarrierError among its classes: a broken barrier raises an
-- InvalidStateError whose field `broken_barrier` is true.
local function broken_error(msg)
  return InvalidStateError("broken barrier: " .. msg, { broken_barrier = true })
end

local function is_passable(self)
  local s = self._state
  return s ~= "draining" and s ~= "resetting"
end

local function is_not_filling(self)
  return self._state ~= "filling"
end

-- The last task in: the barrier drains.
local function barrier_wait_body(self, index)
  local cond = self._cond
  if index + 1 == self.parties then
    self._state = "draining"
    cond:notify_all()
    return
  end
  await(cond:wait_for(function() return is_not_filling(self) end))
  if self._state == "broken" or self._state == "resetting" then
    error(broken_error("the barrier was aborted or reset while waiting"), 0)
  end
end

-- The last task out ends the draining or the reset.
local function barrier_exit(self)
  if self._count == 0 then
    if self._state == "resetting" or self._state == "draining" then self._state = "filling" end
    self._cond:notify_all()
  end
end

-- Returns this task's arrival index, 0 .. parties-1.
Barrier.wait = async(function(self)
  check_self(self, Barrier, "Barrier:wait")
  local c <close> = await(self._cond:acquire())
  await(c:wait_for(function() return is_passable(self) end))
  if self._state == "broken" then error(broken_error("the barrier was aborted"), 0) end
  local index = self._count
  self._count = index + 1
  local ok, err = pcall(barrier_wait_body, self, index)
  self._count = self._count - 1
  barrier_exit(self)
  if not ok then error(err, 0) end
  return index
end, "Barrier.wait")

-- Tasks waiting now fail with the broken-barrier error; the barrier fills again after.
Barrier.reset = async(function(self)
  check_self(self, Barrier, "Barrier:reset")
  local c <close> = await(self._cond:acquire())
  if self._count > 0 then
    self._state = "resetting"
  else
    self._state = "filling"
  end
  c:notify_all()
end, "Barrier.reset")

-- Breaks the barrier for good: every wait, now and later, fails.
Barrier.abort = async(function(self)
  check_self(self, Barrier, "Barrier:abort")
  local c <close> = await(self._cond:acquire())
  self._state = "broken"
  c:notify_all()
end, "Barrier.abort")

function Barrier:n_waiting()
  return self._state == "filling" and self._count or 0
end

function Barrier:broken()
  return self._state == "broken"
end

function Barrier:__tostring()
  local extra = ""
  if self._state == "filling" then extra = (", waiters:%d/%d"):format(self._count, self.parties) end
  return ("Barrier [%s%s]"):format(self._state, extra)
end

-- a method called with '.' says so (Lock's and Semaphore's, on hotter paths, check inline)
core._checked_methods(Event, Event, "Event", "event")
core._checked_methods(Condition, Condition, "Condition", "cond")
core._checked_methods(Barrier, Barrier, "Barrier", "barrier")

return M, { fifo = fifo }
