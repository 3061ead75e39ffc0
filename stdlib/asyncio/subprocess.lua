-- subprocess.lua — create_subprocess_exec / create_subprocess_shell and Process, on the
-- primitives of async/os/process.c; the pipes are the StreamReader/StreamWriter of streams.lua.
local core, asyncio, imports = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local async, await, gather, shield = asyncio.async, asyncio.await, asyncio.gather, asyncio.shield
local BrokenPipeError, ConnectionError = asyncio.BrokenPipeError, asyncio.ConnectionError
local net, make_streams, waiting_on = core.net, imports.make_streams, imports.waiting_on
local spawn, returncode, exit_future = core.process_spawn, core.process_returncode, core.process_exit_future
local send_signal, pipe_settled = core.process_send_signal, core.process_pipe_settled
local pipe_handover = core.process_pipe_handover
local Reader = asyncio.StreamReader
local type, select, pairs, pcall, error, tostring = type, select, pairs, pcall, error, tostring
local setmetatable, getmetatable = setmetatable, getmetatable

-- The values of Python's subprocess.PIPE, STDOUT and DEVNULL.
local PIPE, STDOUT, DEVNULL = -1, -2, -3
M.PIPE, M.STDOUT, M.DEVNULL = PIPE, STDOUT, DEVNULL

local OPTIONS = { -- and their types (stdin, stdout, stderr: check_stdio)
  stdin = "any", stdout = "any", stderr = "any", cwd = "string", env = "table", limit = "number",
  close_fds = "boolean", pass_fds = "table",
}

-- ---- Process -----------------------------------------------------------------------

local Process = {}
local ProcessMT = { __name = "Process" }

-- returncode reads the C side: nil while the child runs, its exit status after, or
-- minus the number of the signal that killed it.
function ProcessMT.__index(self, k)
  if k == "returncode" then return returncode(self._p) end
  return Process[k]
end

function ProcessMT.__tostring(self) return tostring(self._p) end

-- The exit can be reported before the pipes deliver the last output: let each reader
-- take in what remains (up to its limit), unless another task is reading it already.
local function settle(reader)
  if reader == nil then return end
  local h = reader._h
  while true do
    local done, busy = pipe_settled(h)
    if done or busy then return end
    await(net.wait_read(h))
  end
end

-- wait() -> returncode, once the child has exited and its output is in the readers.
-- (A child that fills a pipe nobody reads never exits: read it, or use communicate.)
Process.wait = async(function(self)
  local exit = shield(exit_future(self._p)) -- a cancelled wait() leaves the exit to others
  if not exit:done() then waiting_on[exit] = ("process %d to exit"):format(self.pid) end
  await(exit)
  settle(self.stdout)
  settle(self.stderr)
  return returncode(self._p)
end, "Process.wait")

local function quiet_pipe_error(err)
  return BrokenPipeError:is(err) or (ConnectionError:is(err) and err.errno == "ECONNRESET")
end

local feed = async(function(stdin, input)
  if stdin == nil then return end
  if input ~= nil then
    local ok, err = pcall(function()
      stdin:write(input)
      await(stdin:drain())
    end)
    if not ok and not quiet_pipe_error(err) then
      stdin:close()
      error(err, 0)
    end
  end
  stdin:close()
end, "Process.communicate.feed")

local read_all = async(function(reader)
  if reader == nil then return nil end
  return await(reader:read())
end, "Process.communicate.read")

-- communicate(input) -> stdout_data, stderr_data (nil for a stream that is not a pipe):
-- writes input to stdin and closes it while reading both outputs to their end, so a
-- child writing much to both cannot block; then waits for the exit.
Process.communicate = async(function(self, input)
  if input ~= nil and type(input) ~= "string" then
    arg_error("communicate: input must be a string or nil, got " .. type(input))
  end
  if input ~= nil and self.stdin == nil then
    arg_error("communicate: input given but stdin is not asyncio.PIPE")
  end
  local _, out, err = await(gather(feed(self.stdin, input), read_all(self.stdout), read_all(self.stderr)))
  await(self:wait())
  return out, err
end, "Process.communicate")

-- send_signal(sig): sig is a name ("SIGTERM") or a number; nothing once the child exited.
function Process:send_signal(sig) send_signal(self._p, sig) end
function Process:terminate() send_signal(self._p, "SIGTERM") end
function Process:kill() send_signal(self._p, "SIGKILL") end

-- ---- creation ----------------------------------------------------------------------

local function describe(v)
  if type(v) == "table" or type(v) == "userdata" then return tostring(v) end
  if type(v) == "string" then return ("%q"):format(v) end
  return type(v) == "number" and tostring(v) or type(v)
end

-- stdin, stdout, stderr: PIPE, DEVNULL, STDOUT (stderr only), a descriptor, nil, or for
-- stdin a StreamReader (another process's stdout or stderr)
local function check_stdio(fname, opts, name)
  local v = opts[name]
  if v == nil or (math.type(v) == "integer" and v >= -3 and (v ~= STDOUT or name == "stderr")) then
    return
  end
  if name == "stdin" and getmetatable(v) == Reader then return end
  arg_error(("%s: %s must be asyncio.PIPE, asyncio.DEVNULL%s, a file descriptor%s or nil "
    .. "(inherit), got %s"):format(fname, name, name == "stderr" and ", asyncio.STDOUT" or "",
      name == "stdin" and ", another process's stdout" or "", describe(v)))
end

local function check_opts(fname, opts)
  if opts == nil then return {} end
  core._check_options(fname, opts, OPTIONS)
  for _, name in ipairs { "stdin", "stdout", "stderr" } do check_stdio(fname, opts, name) end
  if opts.close_fds ~= nil and type(opts.close_fds) ~= "boolean" then
    arg_error(fname .. ": close_fds must be a boolean, got " .. type(opts.close_fds))
  end
  local pass_fds = opts.pass_fds
  if pass_fds ~= nil then
    if type(pass_fds) ~= "table" then
      arg_error(fname .. ": pass_fds must be a list of file descriptors, got " .. type(pass_fds))
    end
    for k, fd in pairs(pass_fds) do
      if math.type(k) ~= "integer" or k < 1 or k > #pass_fds then
        arg_error(fname .. ": pass_fds must be a list of file descriptors, got key " .. tostring(k))
      end
      if math.type(fd) ~= "integer" or fd < 0 or fd > 0x7fffffff then
        arg_error(fname .. ": pass_fds[" .. k .. "] must be a file descriptor (an integer >= 0), got "
          .. (type(fd) == "number" and tostring(fd) or type(fd)))
      end
    end
  end
  if opts.cwd ~= nil and type(opts.cwd) ~= "string" then
    arg_error(fname .. ": cwd must be a string, got " .. type(opts.cwd))
  end
  if opts.env ~= nil and type(opts.env) ~= "table" then
    arg_error(fname .. ": env must be a table, got " .. type(opts.env))
  end
  if opts.limit ~= nil and (math.tointeger(opts.limit) or 0) <= 0 then
    arg_error(fname .. ": limit must be a positive integer, got " .. tostring(opts.limit))
  end
  return opts
end

-- Copies what a StreamReader given as stdin still delivers into the child's stdin pipe.
local pump = async(function(reader, writer)
  local ok, err = pcall(function()
    while true do
      local data = await(reader:read(65536))
      if data == "" then break end
      writer:write(data)
      await(writer:drain())
    end
  end)
  writer:close()
  if not ok and not quiet_pipe_error(err) then error(err, 0) end
end, "create_subprocess.stdin")

-- A StreamReader as stdin: the child gets its descriptor (the parent's copy is closed),
-- as a shell pipeline does; if some data was already read into the reader, the child
-- gets a pipe and a task copies the data, buffered and to come, in order.
local function stdin_from_reader(fname, opts)
  local source = opts.stdin
  local ok, fd = pcall(pipe_handover, source._h)
  if not ok then arg_error(("%s: stdin: %s"):format(fname, fd)) end
  local copy = {}
  for k, v in pairs(opts) do copy[k] = v end
  copy.stdin = fd or PIPE
  return copy, source, fd
end

local start = async(function(file, args, opts, fname)
  local source, source_fd
  if getmetatable(opts.stdin) == Reader then
    opts, source, source_fd = stdin_from_reader(fname, opts)
  end
  local p, pid, stdin, stdout, stderr = spawn(file, args, opts)
  local proc = { _p = p, pid = pid }
  if stdin then
    local _, writer = make_streams(stdin)
    proc.stdin = writer
  end
  if source_fd then
    net.close(source._h)
  elseif source then
    asyncio.create_task(pump(source, proc.stdin))
    proc.stdin = nil
  end
  for name, h in pairs { stdout = stdout, stderr = stderr } do
    if opts.limit then net.set_limit(h, opts.limit) end
    proc[name] = (make_streams(h))
  end
  return setmetatable(proc, ProcessMT)
end, "create_subprocess")

-- create_subprocess_exec(prog, arg..., {stdin=, stdout=, stderr=, cwd=, env=, limit=,
-- close_fds=, pass_fds=}) -> Process. The streams are asyncio.PIPE, asyncio.DEVNULL,
-- asyncio.STDOUT (stderr into stdout), a file descriptor, or nil (inherited). env replaces
-- the whole environment. As in Python, the child inherits no other descriptor but those
-- listed in pass_fds (at the same numbers), unless close_fds is false.
function M.create_subprocess_exec(prog, ...)
  local n = select("#", ...)
  local opts
  if n > 0 then
    local last = select(n, ...)
    if type(last) == "table" and getmetatable(last) == nil then
      opts, n = last, n - 1
    end
  end
  if type(prog) ~= "string" then
    arg_error("create_subprocess_exec: program must be a string, got " .. type(prog))
  end
  local args = { prog, ... }
  for i = n + 2, #args do args[i] = nil end
  for i = 2, n + 1 do
    local a = args[i]
    if type(a) ~= "string" and type(a) ~= "number" then
      arg_error("create_subprocess_exec: argument #" .. (i - 1) .. " must be a string, got " .. type(a))
    end
  end
  return start(prog, args, check_opts("create_subprocess_exec", opts), "create_subprocess_exec")
end

-- create_subprocess_shell(cmd, opts) -> Process running /bin/sh -c cmd.
function M.create_subprocess_shell(cmd, opts)
  if type(cmd) ~= "string" then
    arg_error("create_subprocess_shell: cmd must be a string, got " .. type(cmd))
  end
  return start("/bin/sh", { "/bin/sh", "-c", cmd }, check_opts("create_subprocess_shell", opts),
    "create_subprocess_shell")
end

core._checked_methods(Process, ProcessMT, "Process", "proc") -- '.' for ':' says so

M.subprocess = {
  PIPE = PIPE, STDOUT = STDOUT, DEVNULL = DEVNULL, Process = Process,
  create_subprocess_exec = M.create_subprocess_exec,
  create_subprocess_shell = M.create_subprocess_shell,
}

return M
