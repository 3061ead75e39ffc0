-- asyncio.lua — builds the asyncio module from the C core and the Lua parts.
local core = ...

local M = {}

-- await is C (core.make_await, async/core/await.c): a coroutine object runs inline,
-- anything else returns its results at once or suspends the task, and await(await, f),
-- the keyword transform's `await f(args)`, returns what to call with the arguments (an
-- async function's body itself inside a task). For any other callee f that is this
-- closure, which awaits what f returns.
local await
await = core.make_await(function(f)
  return function(...) return await(f(...)) end
end)
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

-- The Lua parts. part(name, imports) runs stdlib/asyncio/<name>.lua with the C core,
-- the module as built so far (each may use its public names) and `imports`, what it
-- takes from another part besides the module's public names; the part returns its
-- exports, added to the module here, and what it shares with other parts. No part
-- reaches another through the core table.
local function part(name, imports)
  local exports, shared = core.load_part("asyncio." .. name, core, M, imports)
  for k, v in pairs(exports) do M[k] = v end
  return shared
end

-- Most parts load when one of their names is first used (asyncio.Lock loads locks), so
-- a program, a worker or a to_thread thread pays only for the parts it uses: loading
-- all of them was most of a worker's start-up. lazy_part(name, names, imports) lists
-- the names the part exports (tests/workers_spec.lua checks them against what it does
-- export) and returns a function that loads it once and returns what it shares;
-- `imports` is a function, so a part's imports load with it.
local lazy = {} -- public name -> the loader of its part
local lazy_loaders = {}
local function lazy_part(name, names, imports)
  local loaded, shared = false, nil
  local function load()
    if not loaded then
      loaded = true
      shared = part(name, imports and imports())
    end
    return shared
  end
  for _, k in ipairs(names) do lazy[k] = load end
  lazy_loaders[#lazy_loaders + 1] = load
  return load
end

-- waiter Future -> what it waits on, for print_tasks: shared by locks, queues,
-- subprocess and debug
local waiting_on = setmetatable({}, { __mode = "k" })

-- loaded at once: what running a program needs, and debug mode (ALUA_DEBUG applies as
-- the module loads; debug after signals: SIGQUIT in debug mode)
part("tasks")
part("signals")
part("debug", { waiting_on = waiting_on })

local locks = lazy_part("locks", { "Barrier", "BoundedSemaphore", "Condition", "Event", "Lock",
  "Semaphore" }, function() return { waiting_on = waiting_on } end) -- shares fifo
lazy_part("queues", { "LifoQueue", "PriorityQueue", "Queue" }, function()
  return { fifo = locks().fifo, waiting_on = waiting_on }
end)
lazy_part("taskgroups", { "TaskGroup", "task_group" })
lazy_part("timeouts", { "timeout", "timeout_at", "with_timeout" })
lazy_part("fs", { "fs" })
local tls = lazy_part("tls", {}) -- no public names: shares the ssl option's contexts and handshakes
local streams = lazy_part("streams", { "StreamReader", "StreamWriter", "getaddrinfo",
  "open_connection", "open_udp", "open_unix_connection", "start_server", "start_unix_server" },
  function() return { tls = tls() } end) -- shares make_streams and lookup
lazy_part("subprocess", { "DEVNULL", "PIPE", "STDOUT", "create_subprocess_exec",
  "create_subprocess_shell", "subprocess" }, function()
  return { make_streams = streams().make_streams, waiting_on = waiting_on }
end)
lazy_part("contextvars", { "ContextVar" })
lazy_part("workers", { "cpu_count", "start_worker", "to_thread" })

-- asyncio.socket (LuaSocket's API, also `require "asyncio.socket"`): loaded when first
-- asked for, as Python's lazily imported submodules; the last part, it resolves names
-- with streams' lookup
local function load_socket()
  local socket = core.load_part("asyncio.socket", core, M, { lookup = streams().lookup })
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

setmetatable(M, {
  __index = function(_, k)
    local load = lazy[k]
    if load then
      load()
      return rawget(M, k)
    end
    if k == "socket" then return load_socket() end
    if k == "http" then return load_http() end
  end,
  -- pairs(asyncio) sees every name of the parts (not socket and http, loaded on use)
  __pairs = function(t)
    for _, load in ipairs(lazy_loaders) do load() end
    return next, t, nil
  end,
})

return M
