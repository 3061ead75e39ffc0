-- tasks.lua — run, gather, wait, wait_for, as_completed and shield on Futures.
local core, asyncio = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local await, Future, ensure_future = asyncio.await, asyncio.Future, asyncio.ensure_future
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError
local transfer = core._transfer
local pack, unpack, select, type = table.pack, table.unpack, select, type

local function loop()
  return core.get_running_loop()
end

-- Marks a finished child's error as seen: the combinator reports it, or chose to drop it.
local function retrieve(child)
  if not child:cancelled() then child:exception() end
end

-- ensure_future(aw), a bad aw named for the combinator fname was given it to, not for
-- ensure_future (at the user's line, as ensure_future's own check)
local function future_for(fname, aw)
  local ok, fut = pcall(ensure_future, aw)
  if ok then return fut end
  if type(fut) == "string" then arg_error((fut:gsub("^.-ensure_future: ", fname .. ": ", 1))) end
  error(fut, 0)
end

-- gather(aw, ..., {return_exceptions = bool}) is in C (async/core/gather.c).
M.gather = core.gather

local RETURN_WHEN = { FIRST_COMPLETED = true, FIRST_EXCEPTION = true, ALL_COMPLETED = true }

local function check_list(fname, list)
  if type(list) ~= "table" then
    arg_error(fname .. ": expected a list of awaitables, got " .. type(list))
  end
  if #list == 0 then arg_error(fname .. ": the list of awaitables is empty") end
end

local function check_timeout(fname, timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    arg_error(fname .. ": timeout must be a number of seconds or nil, got "
      .. (type(timeout) == "number" and "NaN" or core._describe(timeout)))
  end
end

local wait_body = asyncio.async(function(list, timeout, return_when)
  -- wrapped here, not when wait() is called: wait is a coroutine, as in Python
  local futs = {}
  for i, aw in ipairs(list) do futs[i] = future_for("wait", aw) end
  local waiter = Future()
  local pending_count = #futs
  local timer
  if timeout then
    timer = loop():call_later(timeout, function()
      if not waiter:done() then waiter:set_result() end
    end)
  end
  local function on_completion(f)
    pending_count = pending_count - 1
    if pending_count <= 0 or return_when == "FIRST_COMPLETED"
        or (return_when == "FIRST_EXCEPTION" and not f:cancelled() and f:exception() ~= nil) then
      if timer then timer:cancel() end
      if not waiter:done() then waiter:set_result() end
    end
  end
  for _, f in ipairs(futs) do f:add_done_callback(on_completion) end
  local ok, err = pcall(await, waiter)
  if timer then timer:cancel() end
  for _, f in ipairs(futs) do f:remove_done_callback(on_completion) end
  if not ok then error(err, 0) end
  local done, pending = {}, {}
  for _, f in ipairs(futs) do
    local into = f:done() and done or pending
    into[#into + 1] = f
  end
  return done, pending
end, "wait")

-- wait(list, {timeout=, return_when=}) -> done, pending (lists, in the list's order)
function M.wait(list, opts)
  check_list("wait", list)
  opts = core._check_options("wait", opts, { timeout = "number", return_when = "string" }) or {}
  check_timeout("wait", opts.timeout)
  local return_when = opts.return_when or "ALL_COMPLETED"
  if not RETURN_WHEN[return_when] then
    arg_error("wait: invalid return_when " .. tostring(return_when))
  end
  return wait_body(list, opts.timeout, return_when)
end

local function cancel_and_wait(fut)
  fut:cancel()
  local done = Future()
  fut:add_done_callback(function() done:set_result() end)
  await(done)
end

-- Whether fut (done) ended by a cancellation: cancelled, or a gather whose cancel ended
-- it failed with its children's CancelledError (as Python's _GatheringFuture does).
local function ended_cancelled(fut)
  return fut:cancelled() or CancelledError:is(fut:exception())
end

local wait_for_body = asyncio.async(function(aw, timeout)
  -- wrapped here: with timeout <= 0 a coroutine object must not start (wait_for is a
  -- coroutine in Python, so nothing runs before it is awaited)
  local fut = future_for("wait_for", aw)
  if timeout == nil then return await(fut) end
  if fut:done() then return fut:result() end
  if timeout <= 0 then
    cancel_and_wait(fut)
    if ended_cancelled(fut) then error(TimeoutError("wait_for: timed out"), 0) end
    return fut:result()
  end
  local this = asyncio.current_task()
  local cancelling = this and this:cancelling() or 0 -- only new requests outrank the timeout
  -- cancelled from C at the deadline (core._cancel_at), never by a Lua callback whose
  -- own call could fail for memory and lose the timeout
  local timer = core._cancel_at(loop():time() + timeout, fut)
  local res = pack(pcall(await, fut))
  timer:cancel()
  if res[1] then return unpack(res, 2, res.n) end
  if core._fired(timer) and CancelledError:is(res[2]) and fut:done() and ended_cancelled(fut)
      and not (this and this:cancelling() > cancelling) then
    error(TimeoutError(("wait_for: timed out after %g s"):format(timeout)), 0)
  end
  error(res[2], 0)
end, "wait_for")

-- wait_for(aw, timeout): aw's results, or TimeoutError (aw cancelled) after timeout s.
function M.wait_for(aw, timeout)
  check_timeout("wait_for", timeout)
  return wait_for_body(aw, timeout)
end

-- as_completed(list, {timeout=}): for a generic for; each value, awaited, gives the
-- results of the next awaitable to finish.
function M.as_completed(list, opts)
  if type(list) ~= "table" then
    arg_error("as_completed: expected a list of awaitables, got " .. type(list))
  end
  opts = core._check_options("as_completed", opts, { timeout = "number" }) or {}
  check_timeout("as_completed", opts.timeout)
  local n = #list
  local slots, filled = {}, 0
  for i = 1, n do slots[i] = Future() end
  local timer
  for i = 1, n do
    future_for("as_completed", list[i]):add_done_callback(function(child)
      if filled >= n or slots[filled + 1]:done() then return retrieve(child) end
      filled = filled + 1
      transfer(slots[filled], child)
      if filled == n and timer then timer:cancel() end
    end)
  end
  if opts.timeout and n > 0 then
    timer = loop():call_later(opts.timeout, function()
      for i = filled + 1, n do
        slots[i]:set_exception(TimeoutError("as_completed: timed out"))
        slots[i]:exception() -- raised to whoever awaits the slot: not worth a report if none does
      end
      filled = n
    end)
  end
  local i = 0
  return function()
    i = i + 1
    return slots[i]
  end
end

-- shield(aw): cancelling what awaits the result does not cancel aw itself.
function M.shield(aw)
  local inner = future_for("shield", aw)
  if inner:done() then return inner end
  local outer = Future()
  inner:add_done_callback(function(child)
    if outer:done() then return retrieve(child) end
    if child:cancelled() then
      outer:cancel()
    else
      transfer(outer, child)
    end
  end)
  return outer
end

-- Cancels every task still pending and waits for them, as asyncio.run does at its end.
function M._shutdown()
  local tasks = asyncio.all_tasks()
  if #tasks == 0 then return end
  for _, t in ipairs(tasks) do t:cancel() end
  local n = #tasks
  tasks[n + 1] = { return_exceptions = true }
  local all = M.gather(unpack(tasks, 1, n + 1))
  tasks[n + 1] = nil
  pcall(core.run_until_complete, all)
  for _, t in ipairs(tasks) do
    if t:done() and not t:cancelled() and t:exception() ~= nil then
      core._report("unhandled error in task '" .. t:get_name() .. "' during shutdown:", t:exception())
    end
  end
end

-- run(aw_or_fn, ...): runs it as the main task to completion, cancels what is left,
-- returns all its results.
function M.run(main, ...)
  if core._loop_is_running() then
    arg_error("asyncio.run: cannot be called from a running event loop")
  end
  local task
  if type(main) == "function" then
    task = asyncio.create_task(main, ...)
  elseif asyncio.iscoroutine(main) then
    task = asyncio.create_task(main)
  else
    local ok, fut = pcall(ensure_future, main)
    if not ok then -- ensure_future's words, with the function run takes too
      if type(fut) == "string" then
        arg_error((fut:gsub("^.-ensure_future: expected a coroutine object, Task or Future,",
          "asyncio.run: expected a coroutine object, an awaitable or a function,", 1)))
      end
      error(fut, 0)
    end
    task = fut
  end
  local res = pack(pcall(core.run_until_complete, task))
  M._shutdown()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

return M
