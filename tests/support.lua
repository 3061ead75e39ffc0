-- support.lua — what the specs share: leftover tasks, expected errors, a child alua.
-- Specs run from the repository's root: `local support = require "tests.support"`.
local assert = require "luassert" -- busted gives spec files luassert as `assert`, not modules
local M = {}

-- Cancels the tasks a spec left behind and waits until they are done. Returns how many
-- there were and how many were still running (not already being cancelled).
function M.cancel_leftovers()
  local left, running = asyncio.all_tasks(), 0
  local n = #left
  for _, t in ipairs(left) do
    if t:cancelling() == 0 then running = running + 1 end
    t:cancel()
  end
  if n > 0 then
    left[n + 1] = { return_exceptions = true }
    await(asyncio.gather(table.unpack(left, 1, n + 1)))
  end
  return n, running
end

-- An after_each for specs of tasks: cancels what the spec left behind and fails the spec
-- if any of it was still running (a task a spec forgot, not one it was cancelling).
function M.expect_no_tasks_left()
  local _, running = M.cancel_leftovers()
  assert.are.equal(0, running, "tasks left running by the spec")
end

-- Wraps an awaitable-returning opener (open_connection, start_server...) in an async
-- function that records what it opened in `opened`, so an after_each can close it.
function M.tracked(opened, fn)
  return asyncio.async(function(...)
    local a, b = asyncio.await(fn(...))
    opened[#opened + 1] = b or a
    return a, b
  end)
end

-- Calls fn(...), which must fail; returns its error.
function M.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- How long one spec body may take before it fails with a TimeoutError instead of
-- hanging its file (until run.sh's limit) when a datagram or a peer never comes.
local VALGRIND = (os.getenv("ALUA_RUNNER") or ""):find("valgrind") ~= nil
M.SPEC_LIMIT = VALGRIND and 900 or 120
-- How much longer a bounded wait may take under valgrind, which runs one thread at a time
-- and each ~20x slower (a spinning worker holds valgrind's lock for whole time slices).
M.SLOWDOWN = VALGRIND and 12 or 1

-- An it(...) body that runs fn as a task (for code that needs a current task), bounded
-- by SPEC_LIMIT seconds.
function M.in_task(fn)
  return function() return await(asyncio.wait_for(asyncio.create_task(fn), M.SPEC_LIMIT)) end
end

-- For a spec file whose bodies all wait on peers: `local it = support.bounded_it(it)`
-- runs each body as with in_task.
function M.bounded_it(it)
  return function(name, fn) return it(name, M.in_task(fn)) end
end

-- Lets the loop run n times (1 by default).
function M.tick(n)
  for _ = 1, n or 1 do await(asyncio.sleep(0)) end
end

-- The first line of a sanitizer's report in a child's output (ThreadSanitizer,
-- AddressSanitizer, LeakSanitizer, UBSan), or nil: a child alua of a `make tsan` or
-- `make check` run reports there, and its exit status alone may not show it.
local SANITIZER_REPORTS = {
  "WARNING: ThreadSanitizer:[^\n]*", "ERROR: %a*Sanitizer:[^\n]*", "[^\n]*: runtime error:[^\n]*",
}
function M.sanitizer_report(text)
  for _, pattern in ipairs(SANITIZER_REPORTS) do
    local line = text:match(pattern)
    if line then return line end
  end
  return nil
end

-- Runs code in a fresh alua; returns its stdout and stderr together, and its exit status.
function M.run_alua(code)
  local bin = os.getenv("ALUA_BIN") or "build/bin/alua"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(bin .. " " .. path .. " 2>&1"))
  local out = p:read("a")
  local _, _, status = p:close()
  os.remove(path)
  return out, status
end

-- Runs code in a fresh alua under the suite's runner (valgrind's memcheck under
-- make valgrind: leaks and invalid accesses make it exit 99; ASan's own checks under
-- make check), after the environment assignments env ("NAME=value ..."); returns its
-- stdout and stderr together, and its exit status.
function M.run_alua_checked(code, env)
  local runner = os.getenv("ALUA_RUNNER") or os.getenv("ALUA_BIN") or "build/bin/alua"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("%s %s %s 2>&1"):format(env or "", runner, path)))
  local out = p:read("a")
  local _, _, status = p:close()
  os.remove(path)
  return out, status
end

-- Runs body with run_alua_checked in a program whose libuv thread pool, cut to one
-- thread, is held by `held`, an fs.open of a FIFO nobody writes to yet: what body queues
-- next on the pool waits, certainly cancellable, until `release(delay)` (in body) opens
-- the FIFO for writing from a process of its own, after delay seconds. Returns the
-- program's output and exit status.
function M.run_with_held_pool(body)
  local fifo = os.tmpname()
  os.remove(fifo)
  assert(os.execute("mkfifo '" .. fifo .. "'"))
  local code = ([[
local fifo = %q
local held = asyncio.create_task(asyncio.fs.open(fifo))
await(asyncio.sleep(0))
local function release(delay)
  os.execute(("(sleep %%s; : > '%%s') &"):format(delay or 0, fifo))
end
]]):format(fifo) .. body
  local out, status = M.run_alua_checked(code, "UV_THREADPOOL_SIZE=1")
  os.remove(fifo)
  return out, status
end

-- Runs a program (inside a task or at the top level); returns its stdout, stderr and
-- exit status.
function M.run(...)
  local args = table.pack(...)
  args[args.n + 1] = { stdin = asyncio.PIPE, stdout = asyncio.PIPE, stderr = asyncio.PIPE }
  local p = await(asyncio.create_subprocess_exec(table.unpack(args, 1, args.n + 1)))
  local out, err = await(p:communicate())
  return out, err, p.returncode
end

-- Starts a program that prints a line matching `pattern` (which captures its port);
-- returns the process and the port. A peer that exits first fails the spec with its output.
function M.start_peer(pattern, ...)
  local args = table.pack(...)
  args[args.n + 1] = { stdin = asyncio.PIPE, stdout = asyncio.PIPE, stderr = asyncio.STDOUT }
  local p = await(asyncio.create_subprocess_exec(table.unpack(args, 1, args.n + 1)))
  local seen = {}
  while true do
    local line = await(asyncio.wait_for(p.stdout:readline(), 10))
    assert.are_not.equal("", line, "the peer exited: " .. table.concat(seen))
    seen[#seen + 1] = line
    local port = line:match(pattern)
    if port then return p, tonumber(port) end
  end
end

function M.stop_peer(p)
  if p.returncode == nil then pcall(p.kill, p) end
  await(asyncio.wait_for(p:wait(), 10))
end

return M
