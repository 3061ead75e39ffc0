-- queues.lua — Queue (FIFO), LifoQueue and PriorityQueue: put/get suspend while full or
-- empty, waiters are woken in FIFO order, shutdown fails the waiters (Python 3.13).
local core, asyncio, imports = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local await, async, Future, fifo = asyncio.await, asyncio.async, asyncio.Future, imports.fifo
local QueueEmpty, QueueFull, QueueShutDown = asyncio.QueueEmpty, asyncio.QueueFull, asyncio.QueueShutDown
local waiting_on = imports.waiting_on
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local type, tostring, tointeger, pairs = type, tostring, math.tointeger, pairs

-- ---- storage: each kind keeps its items in self._items ------------------------------

-- FIFO: a ring of array slots head..tail (nil items allowed: the count is tail-head+1).
local fifo_store = {
  init = function(self) self._items, self._head, self._tail = {}, 1, 0 end,
  size = function(self) return self._tail - self._head + 1 end,
  put = function(self, item)
    local tail = self._tail + 1
    self._tail = tail
    self._items[tail] = item
  end,
  get = function(self)
    local head, items = self._head, self._items
    local item = items[head]
    items[head] = nil
    if head == self._tail then
      self._head, self._tail = 1, 0
    else
      self._head = head + 1
    end
    return item
  end,
}

-- LIFO: a stack with an explicit count.
local lifo_store = {
  init = function(self) self._items, self._n = {}, 0 end,
  size = function(self) return self._n end,
  put = function(self, item)
    local n = self._n + 1
    self._n = n
    self._items[n] = item
  end,
  get = function(self)
    local n, items = self._n, self._items
    local item = items[n]
    items[n] = nil
    self._n = n - 1
    return item
  end,
}

-- Priority: a binary min-heap on `<`; equal items leave in insertion order (each slot
-- carries a sequence number in the parallel array _seq).
local function heap_less(items, seq, i, j)
  local a, b = items[i], items[j]
  if a < b then return true end
  if b < a then return false end
  return seq[i] < seq[j]
end

-- Where item goes in the heap of n - 1 items (compare first, move after: an item that
-- cannot be compared leaves the heap intact).
local function heap_position(items, item, n)
  local pos = n
  while pos > 1 do
    local parent = pos // 2
    if not (item < items[parent]) then break end
    pos = parent
  end
  return pos
end

local priority_store = {
  init = function(self) self._items, self._seq, self._n, self._next_seq = {}, {}, 0, 0 end,
  size = function(self) return self._n end,
  put = function(self, item)
    local items, seq = self._items, self._seq
    local n = self._n + 1
    local ok, pos = pcall(heap_position, items, item, n)
    if not ok then -- at the user's line, naming the call (a Python tuple ported as a table)
      arg_error("PriorityQueue:put: the item cannot be compared with the queued ones ("
        .. tostring(pos):gsub("^[^\n]-:%d+: ", "") .. "; items are compared with <: numbers, strings, or tables with __lt)")
    end
    local s = self._next_seq + 1
    self._next_seq = s
    local i = n
    while i > pos do
      local parent = i // 2
      items[i], seq[i] = items[parent], seq[parent]
      i = parent
    end
    items[pos], seq[pos] = item, s
    self._n = n
  end,
  get = function(self)
    local items, seq, n = self._items, self._seq, self._n
    local top = items[1]
    items[1], seq[1] = items[n], seq[n]
    items[n], seq[n] = nil, nil
    n = n - 1
    self._n = n
    local i = 1
    while true do
      local l = 2 * i
      if l > n then break end
      local smallest = (l < n and heap_less(items, seq, l + 1, l)) and l + 1 or l
      if not heap_less(items, seq, smallest, i) then break end
      items[i], items[smallest] = items[smallest], items[i]
      seq[i], seq[smallest] = seq[smallest], seq[i]
      i = smallest
    end
    return top
  end,
}

-- ---- the queue ---------------------------------------------------------------------

local methods = {}

local function full(self)
  local maxsize = self.maxsize
  return maxsize > 0 and self._size(self) >= maxsize
end

-- Wakes the first waiter in `waiters` still waiting.
local function wakeup_next(waiters)
  while true do
    local fut = waiters:shift()
    if fut == nil then return end
    if not fut:done() then
      fut:set_result()
      return
    end
  end
end

-- Waits on a fresh Future in `waiters`; when this fails (a cancellation) after a
-- wake-up, `still_ready(self)` tells whether to hand the wake-up to the next one.
local function wait_turn(self, waiters, still_ready)
  local fut = Future()
  waiters:push(fut)
  waiting_on[fut] = self
  local ok, err = pcall(await, fut)
  if ok then return end
  fut:cancel()
  waiters:remove(fut)
  if still_ready(self) and not fut:cancelled() then wakeup_next(waiters) end
  error(err, 0)
end

local function not_full(self) return not full(self) end
local function not_empty(self) return self._size(self) > 0 end

local function check_queue(self, fname)
  if type(self) ~= "table" or self._putters == nil then
    core._self_error("Queue", "queue", fname:match(":(.*)$"))
  end
end

function methods:qsize()
  check_queue(self, "Queue:qsize")
  return self._size(self)
end

function methods:empty()
  check_queue(self, "Queue:empty")
  return self._size(self) == 0
end

function methods:full()
  check_queue(self, "Queue:full")
  return full(self)
end

function methods:put_nowait(item)
  check_queue(self, "Queue:put_nowait")
  if self._is_shutdown then error(QueueShutDown("Queue:put_nowait: the queue is shut down"), 2) end
  if full(self) then error(QueueFull("Queue:put_nowait: the queue is full"), 2) end
  self._put(self, item)
  self._unfinished = self._unfinished + 1
  self._finished:clear()
  wakeup_next(self._getters)
end

function methods:get_nowait()
  check_queue(self, "Queue:get_nowait")
  if self._size(self) == 0 then
    if self._is_shutdown then error(QueueShutDown("Queue:get_nowait: the queue is shut down"), 2) end
    error(QueueEmpty("Queue:get_nowait: the queue is empty"), 2)
  end
  local item = self._get(self)
  wakeup_next(self._putters)
  return item
end

methods.put = async(function(self, item)
  check_queue(self, "Queue:put")
  while full(self) do
    if self._is_shutdown then error(QueueShutDown("Queue:put: the queue is shut down"), 0) end
    wait_turn(self, self._putters, not_full)
  end
  if self._is_shutdown then error(QueueShutDown("Queue:put: the queue is shut down"), 0) end
  methods.put_nowait(self, item)
end, "Queue.put")

methods.get = async(function(self)
  check_queue(self, "Queue:get")
  while self._size(self) == 0 do
    if self._is_shutdown then error(QueueShutDown("Queue:get: the queue is shut down"), 0) end
    wait_turn(self, self._getters, not_empty)
  end
  return methods.get_nowait(self)
end, "Queue.get")

-- Marks one item taken by get as processed; join() returns once every item put is.
function methods:task_done()
  check_queue(self, "Queue:task_done")
  if self._unfinished <= 0 then arg_error("Queue:task_done: called more times than there were items") end
  self._unfinished = self._unfinished - 1
  if self._unfinished == 0 then self._finished:set() end
end

methods.join = async(function(self)
  check_queue(self, "Queue:join")
  if self._unfinished > 0 then await(self._finished:wait()) end
end, "Queue.join")

-- Refuses new items; put and get waiters fail with QueueShutDown (get only once the
-- queue is empty). immediate: the items still queued are dropped (and count as done).
function methods:shutdown(immediate)
  check_queue(self, "Queue:shutdown")
  self._is_shutdown = true
  if immediate then
    while self._size(self) > 0 do
      self._get(self)
      if self._unfinished > 0 then self._unfinished = self._unfinished - 1 end
    end
    if self._unfinished == 0 then self._finished:set() end
  end
  for _, waiters in pairs { self._getters, self._putters } do
    while true do
      local fut = waiters:shift()
      if fut == nil then break end
      if not fut:done() then fut:set_result() end
    end
  end
end

local function queue_tostring(self)
  local s = ("%s [maxsize=%d, qsize=%d"):format(getmetatable(self).__name, self.maxsize, self._size(self))
  if self._unfinished > 0 then s = s .. ", tasks=" .. self._unfinished end
  if self._getters:len() > 0 then s = s .. ", getters=" .. self._getters:len() end
  if self._putters:len() > 0 then s = s .. ", putters=" .. self._putters:len() end
  if self._is_shutdown then s = s .. ", shutdown" end
  return s .. "]"
end

local function queue_class(name, store)
  local cls = { __name = name, __tostring = queue_tostring,
    _size = store.size, _put = store.put, _get = store.get }
  for k, v in pairs(methods) do cls[k] = v end
  cls.__index = cls
  M[name] = function(maxsize)
    local n = 0
    if maxsize ~= nil then
      n = type(maxsize) == "number" and tointeger(maxsize)
      if not n then arg_error(name .. ": maxsize must be an integer (0 or less: unbounded), got " .. tostring(maxsize)) end
    end
    local finished = asyncio.Event()
    finished:set()
    local self = setmetatable({ maxsize = n, _getters = fifo(), _putters = fifo(),
      _unfinished = 0, _finished = finished, _is_shutdown = false }, cls)
    store.init(self)
    return self
  end
end

queue_class("Queue", fifo_store)
queue_class("LifoQueue", lifo_store)
queue_class("PriorityQueue", priority_store)

return M
