-- errors.lua — what an asyncio error costs: every cancelled task makes a CancelledError,
-- every failed I/O call an OSError, and each instance carries a traceback.
-- usage: alua bench/errors.lua [TASKS [STATS [MADE]]]
-- prints ns_per_cancelled_task=... ns_per_caught_oserror=... ns_per_error_made=...
local asyncio = require "asyncio"
local fs = asyncio.fs
local TASKS = tonumber(arg[1]) or 100000
local STATS = tonumber(arg[2]) or 20000
local MADE = tonumber(arg[3]) or 50000

-- A few frames of user code under every error, as in a real program: the traceback
-- walks them all.
local function at_depth(n, fn, ...)
  if n == 0 then return fn(...) end
  return (at_depth(n - 1, fn, ...))
end

local sleeper = async(function() at_depth(4, function() await(asyncio.sleep(3600)) end) end)

-- Tasks created, started (each asleep in its body) and cancelled; the time covers all of
-- it, up to the end of the last task. Each makes two CancelledErrors: one raised in the
-- task at its await, one for gather, which awaits it.
local function cancelled_tasks(loop)
  local t0 = loop:time()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = asyncio.create_task(sleeper()) end
  await(asyncio.sleep(0))
  for i = 1, TASKS do tasks[i]:cancel() end
  tasks[TASKS + 1] = { return_exceptions = true }
  local outcomes = { await(asyncio.gather(table.unpack(tasks, 1, TASKS + 1))) }
  local t1 = loop:time()
  local last = outcomes[TASKS]
  assert(#outcomes == TASKS and (TASKS == 0 or asyncio.CancelledError:is(last)), "not cancelled")
  return (t1 - t0) * 1e9 / TASKS
end

-- A stat of a missing file, caught: libuv's thread pool round trip plus the OSError.
local function caught_oserrors(loop)
  local missing = os.tmpname() -- made by tmpname: removed, so that stat fails
  os.remove(missing)
  local function stat_missing()
    local ok, err = pcall(await, fs.stat(missing))
    assert(not ok and asyncio.OSError:is(err) and err.errno == "ENOENT", "stat did not fail")
  end
  local t0 = loop:time()
  for _ = 1, STATS do at_depth(4, stat_missing) end
  local t1 = loop:time()
  return (t1 - t0) * 1e9 / STATS
end

-- Error instances made by user code, nothing else: the cost of the instance itself.
local function errors_made(loop)
  local make = asyncio.TimeoutError
  local t0 = loop:time()
  for _ = 1, MADE do at_depth(4, make, "x") end
  local t1 = loop:time()
  return (t1 - t0) * 1e9 / MADE
end

asyncio.run(async(function()
  local loop = asyncio.get_running_loop()
  local cancelled = cancelled_tasks(loop)
  local caught = caught_oserrors(loop)
  local made = errors_made(loop)
  print(string.format(
    "ns_per_cancelled_task=%.0f ns_per_caught_oserror=%.0f ns_per_error_made=%.0f",
    cancelled, caught, made))
end)())
