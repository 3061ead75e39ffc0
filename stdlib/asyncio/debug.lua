-- debug.lua — seeing inside a running program (C: async/debug.c): print_tasks (every
-- pending task, what it waits on in a user's words, its await stack and who waits on
-- it), task:get_stack/print_stack, and debug mode (loop:set_debug, ALUA_DEBUG,
-- alua --debug), under which SIGQUIT prints the tasks and the program goes on.
local core, asyncio, imports = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)

local task_info, task_stack, waiting_on = core.task_info, core.task_stack, imports.waiting_on
local getmetatable = debug.getmetatable
local concat, format = table.concat, string.format

local function task_label(t) return format("Task '%s'", t:get_name()) end

local function in_fifo(list, v)
  for i = list.first, list.last do
    if list[i] == v then return true end
  end
  return false
end

-- What a waiter Future of a lock, event, condition, semaphore or queue stands for, and
-- the task holding the lock (what the waiting task really waits for).
local function describe_waiter(fut)
  local obj = waiting_on[fut]
  if obj == nil or type(obj) == "string" then return obj end
  local mt = getmetatable(obj)
  local kind = mt and mt.__name or "?"
  if obj._getters then
    local n = obj:qsize()
    return format("%s.%s (%d item%s%s)", kind, in_fifo(obj._getters, fut) and "get" or "put", n,
      n == 1 and "" or "s", obj.maxsize > 0 and " of " .. obj.maxsize or "")
  elseif kind == "Lock" then
    local owner = obj._owner
    if owner and not owner:done() then return format("Lock (held by %s)", task_label(owner)), owner end
    return "Lock"
  elseif kind == "Semaphore" or kind == "BoundedSemaphore" then
    return format("%s (value %d)", kind, obj._value)
  end
  return kind .. ".wait"
end

-- What the task waits on, in words, and the task that holds it up besides (a Task it
-- awaits, the owner of a Lock it wants).
local function waits_on(info)
  local state = info.state
  if state == "sleeping" then return format("sleep (%.1f s left)", info.sleep_left) end
  if state == "running" then return "nothing: it is running (it called print_tasks)" end
  if state == "ready" then return "nothing: ready to run" end
  if state == "not started" then
    return "nothing yet: not started" .. (info.body and " (body at " .. info.body .. ")" or "")
  end
  if info.waits_on then return info.waits_on end
  local aw = info.awaiting
  if info.awaiting_kind == "task" then return task_label(aw), aw end
  if info.awaiting_kind == "gather" then return "gather" end
  if aw then
    local text, holder = describe_waiter(aw)
    if text then return text, holder end
    local name = aw:get_name()
    return name ~= "Future" and format("Future '%s'", name) or "a Future"
  end
  return "nothing known"
end

-- Adds "src:line: in name" lines for frames[from] to frames[to] (step 1 or -1) to out;
-- runs of frames in alua's own stdlib and C functions are folded into one line unless
-- debug mode is on (API.md section 9).
local function frame_lines(frames, from, to, step, out, indent)
  local all = core.get_debug()
  local folded = false
  for i = from, to, step do
    local f = frames[i]
    if f.internal and not all then
      if not folded then out[#out + 1] = indent .. "(asyncio internals)" end
      folded = true
    else
      folded = false
      out[#out + 1] = format("%s%s:%s in %s", indent, f.source, f.line and f.line .. ":" or "",
        f.name or "?")
    end
  end
end

-- A task's await stack, newest first as a Lua traceback; returns how many frames.
local function stack_lines(t, out, indent)
  local frames = task_stack(t)
  frame_lines(frames, #frames, 1, -1, out, indent)
  return #frames
end

-- The first of the user's frames in a recorded creation traceback.
local function created_at(obj)
  local tb = core.creation(obj)
  if not tb then return nil end
  for line in tb:gmatch("\n\t([^\n]+)") do
    if not line:match("^stdlib/") and not line:match("^%[C%]") then return (line:gsub(": in .*$", "")) end
  end
end

-- A file argument: nil (io.stderr) or anything with a write method (io's files, or a
-- table collecting the text); else an error at the user's line.
local function has_write(file) return type(file.write) == "function" end

local function check_file(fname, file)
  local t = type(file)
  if file == nil or ((t == "userdata" or t == "table") and select(2, pcall(has_write, file)) == true) then return end
  core._arg_error(fname .. ": file must be a file (io.stderr, io.open's) or nil, got " .. core._describe(file))
end

-- asyncio.print_tasks([file]): every pending task, oldest first, to file (io.stderr).
function M.print_tasks(file)
  check_file("print_tasks", file)
  file = file or io.stderr
  local tasks = asyncio.all_tasks()
  local infos, waiting, holders = {}, {}, {}
  for _, t in ipairs(tasks) do
    local info = task_info(t)
    info.text, info.holder = waits_on(info)
    infos[t] = info
    local function waits_for(other)
      local list = waiting[other] or {}
      waiting[other] = list
      list[#list + 1] = t
    end
    if info.holder then
      waits_for(info.holder)
      holders[t] = info.awaiting_kind ~= "task" -- a lock it wants, not a task it awaits
    end
    for _, child in ipairs(info.children or {}) do -- the tasks of a gather it awaits
      if getmetatable(child) == getmetatable(t) then waits_for(child) end
    end
  end
  local out = { format("%d pending task%s (asyncio.print_tasks):", #tasks, #tasks == 1 and "" or "s") }
  for _, t in ipairs(tasks) do
    local info = infos[t]
    out[#out + 1] = format("%s: %s%s", task_label(t), info.state,
      info.cancelling > 0 and ", being cancelled" or "")
    out[#out + 1] = "  waits on: " .. info.text
    local site = created_at(t)
    if site then out[#out + 1] = "  created at: " .. site end
    local mark = #out + 1
    out[mark] = "  stack:"
    if stack_lines(t, out, "    ") == 0 then table.remove(out, mark) end
    local by = waiting[t]
    if by then
      local names = {}
      for i, w in ipairs(by) do
        names[i] = task_label(w) .. (holders[w] and " (wants a lock it holds)" or "")
      end
      out[#out + 1] = "  waited on by: " .. concat(names, ", ")
    end
  end
  file:write(concat(out, "\n"), "\n")
  if file.flush then file:flush() end
end

-- ---- task:get_stack([limit]), task:print_stack([limit [, file]]) ---------------------

local task_mt = debug.getregistry()["asyncio.Task"]
local task_methods = task_mt.__index

-- Bad arguments are named at the user's line (task_stack's own check would name itself
-- and a line of this file).
local function check_stack_args(self, method, limit, file)
  if getmetatable(self) ~= task_mt then core._self_error("Task", "task", method, self) end
  if limit ~= nil and math.tointeger(limit) == nil then
    core._arg_error(("Task:%s: limit must be an integer or nil, got %s"):format(method, core._describe(limit)))
  end
  check_file("Task:" .. method, file)
end

-- The frames of the task's await stack, oldest first (as Python's), each
-- {source =, line =, name =}; empty for a task that is not suspended in Lua code.
function task_methods:get_stack(limit)
  check_stack_args(self, "get_stack", limit)
  local frames = task_stack(self, limit)
  for _, f in ipairs(frames) do f.internal = nil end
  return frames
end

function task_methods:print_stack(limit, file)
  check_stack_args(self, "print_stack", limit, file)
  file = file or io.stderr
  local out = { format("Stack for %s (most recent call last):", task_label(self)) }
  local frames = task_stack(self, limit)
  frame_lines(frames, 1, #frames, 1, out, "  ")
  if #out == 1 then out[2] = "  (no frames: " .. task_info(self).state .. ")" end
  file:write(concat(out, "\n"), "\n")
end

-- ---- debug mode --------------------------------------------------------------------

local loop = core.get_running_loop()
local loop_mt = getmetatable(loop)
local loop_methods = loop_mt.__index
local sigquit_ours = false

-- loop:set_debug(enabled): slow steps, creation sites and unclosed resources reported on
-- stderr; SIGQUIT (Ctrl-\) prints the tasks and the program goes on.
function loop_methods:set_debug(enabled)
  enabled = not not enabled
  core.set_debug(enabled)
  if enabled and not sigquit_ours then
    sigquit_ours = pcall(asyncio.add_signal_handler, "SIGQUIT", M.print_tasks)
  elseif not enabled and sigquit_ours then
    asyncio.remove_signal_handler("SIGQUIT")
    sigquit_ours = false
  end
end

function loop_methods:get_debug() return core.get_debug() end

-- loop.slow_callback_duration: a field, as in Python (seconds; 0.1 by default)
setmetatable(loop_methods, { __index = function(_, k)
  if k == "slow_callback_duration" then return core.slow_callback_duration() end
end })
loop_mt.__newindex = function(_, k, v)
  if k ~= "slow_callback_duration" then error("loop: cannot set field '" .. tostring(k) .. "'", 2) end
  core.slow_callback_duration(v)
end

if core.debug_env() then loop:set_debug(true) end

return M
