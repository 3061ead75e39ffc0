-- asyncio/workers.lua — workers and to_thread: scripts and functions on other threads,
-- each with its own Lua state; values cross as copies (async/copy.c).
local core, asyncio = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)

local async, await = asyncio.async, asyncio.await
local worker_start, worker_started = core.worker_start, core.worker_started
local submit, job_wait, job_cancel, job_done =
  core.to_thread_submit, core.to_thread_wait, core.to_thread_cancel, core.to_thread_done
local type, pcall, error = type, pcall, error

M.cpu_count = core.cpu_count

-- await asyncio.start_worker(path, ...) -> Worker, once its script has loaded (a script
-- that cannot be loaded raises here); the thread starts at the call, as create_task does.
function M.start_worker(path, ...)
  if type(path) ~= "string" then
    core._arg_error("start_worker: expected the path of a script, got " .. type(path))
  end
  return worker_started(worker_start(path, ...)) -- its errors name the user's line (argcheck)
end

-- <close> on a Worker terminates it and waits until it has stopped.
core.Worker.__close = function(w)
  w:terminate()
  pcall(await, w:wait())
end

-- A cancelled call is interrupted in its thread, and the await ends only once it has
-- stopped: the function never runs on behind the caller's back.
local function finish(job, ok, ...)
  if ok then return ... end
  local err = ...
  if not job_done(job) then
    job_cancel(job)
    repeat pcall(await, job_wait(job)) until job_done(job)
  end
  error(err, 0)
end

local run = async(function(job)
  return finish(job, pcall(await, job_wait(job)))
end, "to_thread")

-- await asyncio.to_thread(fn or "module:function", ...) -> fn's results, computed on a
-- pool of up to cpu_count() threads. The call is queued at once, as create_task would.
function M.to_thread(fn, ...)
  return run(submit(fn, ...)) -- a bad fn or argument: an error at the user's line (argcheck)
end

return M
