-- subprocess_spec.lua — create_subprocess_exec/shell with real programs: pipes are
-- StreamReader/StreamWriter, exit status and signals, communicate without deadlock.

local support = require "tests.support"
local it = support.bounded_it(it) -- every body waits on peers: bounded, in a task
local exec, shell = asyncio.create_subprocess_exec, asyncio.create_subprocess_shell
local PIPE, STDOUT, DEVNULL = asyncio.PIPE, asyncio.STDOUT, asyncio.DEVNULL
local OSError = asyncio.OSError

after_each(function()
  assert.are.equal(0, (support.cancel_leftovers()), "tasks left over by the spec")
end)

local alua = os.getenv("ALUA_BIN") or "build/bin/alua"

describe("create_subprocess_exec", function()
  it("runs a program and reads its stdout", function()
    local p = await(exec("echo", "hello", "world", 42, { stdout = PIPE }))
    assert.is_true(math.type(p.pid) == "integer" and p.pid > 0)
    assert.are.equal("hello world 42\n", await(p.stdout:read()))
    assert.are.equal(0, await(p:wait()))
    assert.are.equal(0, p.returncode)
    assert.is_nil(p.stdin)
    assert.is_nil(p.stderr)
  end)

  it("returncode is nil while the child runs", function()
    local p = await(exec("sleep", "0.05"))
    assert.is_nil(p.returncode)
    assert.matches("running", tostring(p))
    assert.are.equal(0, await(p:wait()))
    assert.matches("returncode=0", tostring(p))
  end)

  it("round-trips lines through cat's stdin and stdout", function()
    local p = await(exec("cat", { stdin = PIPE, stdout = PIPE }))
    for i = 1, 5 do
      p.stdin:write("line " .. i .. "\n")
      await(p.stdin:drain())
      assert.are.equal("line " .. i .. "\n", await(p.stdout:readline()))
    end
    p.stdin:write_eof()
    assert.are.equal("", await(p.stdout:read()))
    assert.is_true(p.stdout:at_eof())
    assert.are.equal(0, await(p:wait()))
  end)

  it("closing stdin ends cat", function()
    local p = await(exec("cat", { stdin = PIPE, stdout = PIPE }))
    p.stdin:write("abc")
    p.stdin:close()
    assert.are.equal("abc", await(p.stdout:read()))
    assert.are.equal(0, await(p:wait()))
  end)

  it("large output (several MB) is not truncated", function()
    local p = await(exec("head", "-c", "6000000", "/dev/zero", { stdout = PIPE }))
    local data = await(p.stdout:read())
    assert.are.equal(6000000, #data)
    assert.is_nil(data:find("[^%z]"))
    assert.are.equal(0, await(p:wait()))
  end)

  it("reads lines with lines()", function()
    local p = await(exec("seq", "1", "5", { stdout = PIPE }))
    local got = {}
    for line in p.stdout:lines() do got[#got + 1] = line end
    assert.are.same({ "1", "2", "3", "4", "5" }, got)
    await(p:wait())
  end)

  it("exit status 3", function()
    local p = await(exec("sh", "-c", "exit 3"))
    assert.are.equal(3, await(p:wait()))
    assert.are.equal(3, p.returncode)
  end)

  it("a child killed by a signal has minus the signal as returncode", function()
    local p = await(exec("sh", "-c", "kill -TERM $$"))
    assert.are.equal(-15, await(p:wait()))
  end)

  it("kill, terminate and send_signal", function()
    local p = await(exec("sleep", "30"))
    p:kill()
    assert.are.equal(-9, await(p:wait()))
    p = await(exec("sleep", "30"))
    p:terminate()
    assert.are.equal(-15, await(p:wait()))
    p = await(exec("sleep", "30"))
    p:send_signal("SIGUSR1")
    assert.are.equal(-10, await(p:wait()))
    p = await(exec("sleep", "30"))
    p:send_signal(15)
    assert.are.equal(-15, await(p:wait()))
    p:kill() -- after the exit: nothing happens
    assert.are.equal(-15, p.returncode)
    assert.has_error(function() p:send_signal("SIGNOPE") end)
  end)

  it("wait() with output still pending: the output stays readable", function()
    local p = await(exec("sh", "-c", "printf 'first\\nsecond'", { stdout = PIPE }))
    assert.are.equal(0, await(p:wait()))
    assert.are.equal("first\n", await(p.stdout:readline()))
    assert.are.equal("second", await(p.stdout:read()))
    assert.is_true(p.stdout:at_eof())
  end)

  it("a cancelled wait() does not spoil the next", function()
    local p = await(exec("sleep", "30"))
    local ok, err = pcall(await, asyncio.wait_for(p:wait(), 0.05))
    assert.is_false(ok)
    assert.is_true(asyncio.TimeoutError:is(err))
    p:kill()
    assert.are.equal(-9, await(p:wait()))
    assert.are.equal(-9, await(p:wait()))
  end)

  it("several tasks can wait for the same process", function()
    local p = await(exec("sleep", "0.05"))
    local a, b = await(asyncio.gather(p:wait(), p:wait()))
    assert.are.equal(0, a)
    assert.are.equal(0, b)
  end)

  it("a program that does not exist raises OSError ENOENT naming it", function()
    local ok, err = pcall(await, exec("no-such-program-here", "x"))
    assert.is_false(ok)
    assert.is_true(OSError:is(err))
    assert.are.equal("ENOENT", err.errno)
    assert.are.equal("spawn", err.syscall)
    assert.are.equal("no-such-program-here", err.filename)
    assert.matches("no-such-program-here", err.message, 1, true)
  end)

  it("a file that is not executable raises EACCES", function()
    local path = os.tmpname() -- mode 0600
    local ok, err = pcall(await, exec(path))
    os.remove(path)
    assert.is_false(ok)
    assert.are.equal("EACCES", err.errno)
  end)

  it("env replaces the environment; cwd sets the directory", function()
    local p = await(exec("sh", "-c", 'echo "$FOO|$NUM|${HOME:-unset}"; pwd',
      { env = { FOO = "bar", NUM = 7, PATH = os.getenv("PATH") }, cwd = "/tmp", stdout = PIPE }))
    local out = await(p:communicate())
    assert.are.equal("bar|7|unset\n/tmp\n", out)
  end)

  it("a missing cwd fails to spawn", function()
    local ok, err = pcall(await, exec("true", { cwd = "/no/such/dir" }))
    assert.is_false(ok)
    assert.are.equal("ENOENT", err.errno)
  end)

  it("checks its arguments", function()
    assert.has_error(function() exec(nil) end)
    assert.has_error(function() exec("echo", {}, "x") end)
    assert.matches("create_subprocess_exec: unknown option 'bogus' %(known options: "
      .. "close_fds, cwd, env, limit, pass_fds, stderr, stdin, stdout%)", support.raises(exec, "echo", { bogus = 1 }))
    assert.matches("create_subprocess_exec: unknown option 'stdout_' %(did you mean 'stdout'%?%)",
      support.raises(exec, "echo", { stdout_ = 1 }))
    assert.has_error(function() exec("echo", { cwd = 3 }) end)
    assert.has_error(function() await(exec("echo", { stdout = STDOUT })) end)
    assert.has_error(function() await(exec("echo", { stdout = "pipe" })) end)
    assert.has_error(function() await(exec("echo", { env = { 1, 2 } })) end)
    assert.has_error(function() shell(42) end)
  end)
end)

describe("stdio choices", function()
  it("stderr = STDOUT merges both into stdout", function()
    local p = await(shell("echo out; echo err >&2", { stdout = PIPE, stderr = STDOUT }))
    assert.is_nil(p.stderr)
    local out, err = await(p:communicate())
    assert.are.equal("out\nerr\n", out)
    assert.is_nil(err)
    assert.are.equal(0, p.returncode)
  end)

  it("stderr = STDOUT with stdout DEVNULL discards both", function()
    local p = await(shell("echo out; echo err >&2", { stdout = DEVNULL, stderr = STDOUT }))
    assert.are.same({ n = 2 }, table.pack(await(p:communicate())))
  end)

  it("separate stdout and stderr pipes", function()
    local p = await(shell("echo out; echo err >&2; exit 5", { stdout = PIPE, stderr = PIPE }))
    local out, err = await(p:communicate())
    assert.are.equal("out\n", out)
    assert.are.equal("err\n", err)
    assert.are.equal(5, p.returncode)
  end)

  it("DEVNULL: no stream; stdin DEVNULL reads as empty", function()
    local p = await(exec("cat", { stdin = DEVNULL, stdout = PIPE }))
    assert.is_nil(p.stdin)
    assert.are.equal("", await(p.stdout:read()))
    assert.are.equal(0, await(p:wait()))
    p = await(exec("echo", "hidden", { stdout = DEVNULL }))
    assert.is_nil(p.stdout)
    assert.are.equal(0, await(p:wait()))
  end)

  it("a file descriptor is inherited: stdout = 2 writes to our stderr", function()
    local h = io.popen(alua .. [[ -e 'local p = await(asyncio.create_subprocess_exec("echo", "to-fd-2", { stdout = 2 })) await(p:wait())' 2>&1 >/dev/null]])
    assert.are.equal("to-fd-2\n", h:read("a"))
    h:close()
  end)

  it("inherited stdout goes to ours", function()
    local h = io.popen(alua .. [[ -e 'local p = await(asyncio.create_subprocess_exec("echo", "inherited")) await(p:wait())' 2>&1]])
    assert.are.equal("inherited\n", h:read("a"))
    h:close()
  end)
end)

-- The parent's descriptor number for path (its /proc/self/fd entry's link), other than except.
local function fd_of(path, except)
  local pid = io.open("/proc/self/stat"):read("n")
  local h = io.popen("ls -l /proc/" .. pid .. "/fd")
  local listing = h:read("a")
  h:close()
  for fd, target in listing:gmatch("(%d+) %-> ([^\n]*)") do
    if target == path and tonumber(fd) ~= except then return tonumber(fd) end
  end
  error("no descriptor of ours for " .. path .. " in:\n" .. listing)
end

-- Whether fd is close-on-exec: /proc/self/fdinfo's "flags:" (octal) has O_CLOEXEC, 02000000.
local function cloexec(fd)
  local info = assert(io.open("/proc/self/fdinfo/" .. fd)):read("a")
  local flags = tonumber(info:match("flags:%s*(%d+)"), 8)
  return flags & 0x80000 ~= 0
end

-- What the child sees in its /proc/self/fd: {[fd] = target} (ls's own directory included).
local function child_fds(opts)
  opts.stdout = PIPE
  local p = await(exec("ls", "-l", "/proc/self/fd", opts))
  local out = await(p:communicate())
  assert.are.equal(0, p.returncode)
  local seen = {}
  for fd, target in out:gmatch("(%d+) %-> ([^\n]*)") do seen[tonumber(fd)] = target end
  return seen
end

describe("descriptors the child inherits", function()
  local path, file, fd
  before_each(function()
    path = os.tmpname()
    file = assert(io.open(path, "w"))
    fd = fd_of(path)
  end)
  after_each(function()
    file:close()
    os.remove(path)
  end)

  it("by default only stdin, stdout and stderr, as Python's close_fds", function()
    assert.is_true(fd >= 3 and not cloexec(fd))
    local seen = child_fds({})
    assert.is_nil(seen[fd], "the child inherited the parent's " .. path)
    for n, target in pairs(seen) do
      -- 0-2, and the directory ls itself opened to list them
      assert.is_true(n <= 2 or target:match("^/proc/%d+/fd$") ~= nil, n .. " -> " .. target)
    end
    assert.is_not_nil(seen[0] and seen[1] and seen[2])
  end)

  it("leaves the parent's descriptors as they were: open, flags restored", function()
    child_fds({})
    assert.is_false(cloexec(fd))
    file:write("parent wrote after the spawn\n")
    file:flush()
    -- a spawn that fails restores them too
    local ok, err = pcall(await, exec("no-such-program-here"))
    assert.is_false(ok)
    assert.are.equal("ENOENT", err.errno)
    assert.is_false(cloexec(fd))
    file:write("and after a failed one\n")
    file:close()
    assert.are.equal("parent wrote after the spawn\nand after a failed one\n",
      io.open(path):read("a"))
    file = io.open(path, "a")
  end)

  it("pass_fds keeps a descriptor open in the child at the same number", function()
    local seen = child_fds({ pass_fds = { fd } })
    assert.are.equal(path, seen[fd])
    local p = await(exec("bash", "-c", "echo from-child >&" .. fd, { pass_fds = { fd } }))
    assert.are.equal(0, await(p:wait()))
    file:write("from-parent\n")
    file:close()
    assert.are.equal("from-child\nfrom-parent\n", io.open(path):read("a"))
    file = io.open(path, "a")
    assert.is_false(cloexec(fd_of(path)))
  end)

  it("pass_fds passes a close-on-exec descriptor, which stays close-on-exec", function()
    local f <close> = await(asyncio.fs.open(path, "r")) -- libuv opens with O_CLOEXEC
    local cfd = fd_of(path, fd)
    assert.is_true(cloexec(cfd))
    local seen = child_fds({})
    assert.is_nil(seen[cfd])
    seen = child_fds({ pass_fds = { cfd, fd } })
    assert.are.equal(path, seen[cfd])
    assert.are.equal(path, seen[fd])
    assert.is_true(cloexec(cfd))
    assert.is_false(cloexec(fd))
  end)

  it("close_fds = false inherits what is not close-on-exec, as before", function()
    local seen = child_fds({ close_fds = false })
    assert.are.equal(path, seen[fd])
    assert.is_false(cloexec(fd))
  end)

  it("a descriptor given as stdout is the child's stdout only", function()
    local p = await(exec("ls", "-l", "/proc/self/fd", { stdout = fd }))
    assert.are.equal(0, await(p:wait()))
    file:close()
    local listing = io.open(path):read("a")
    file = io.open(path, "a")
    assert.matches(" 1 -> " .. path .. "\n", listing, 1, true)
    assert.is_nil(listing:match(" " .. fd .. " %-> "), listing)
  end)

  it("a pass_fds descriptor that is not open raises OSError EBADF", function()
    local ok, err = pcall(await, shell("true", { pass_fds = { 1000000 } }))
    assert.is_false(ok)
    assert.is_true(OSError:is(err))
    assert.are.equal("EBADF", err.errno)
    assert.matches("pass_fds: descriptor 1000000 is not open", err.message, 1, true)
    assert.is_false(cloexec(fd))
  end)

  it("checks pass_fds and close_fds", function()
    assert.is_truthy(support.raises(function() exec("true", { pass_fds = 3 }) end):find("create_subprocess_exec: option 'pass_fds' must be a table, got number", 1, true))
    assert.is_truthy(support.raises(function() shell("true", { pass_fds = { 3, -1 } }) end):find("create_subprocess_shell: pass_fds[2] must be a file descriptor (an integer >= 0), got -1", 1, true))
    assert.is_truthy(support.raises(function() exec("true", { pass_fds = { 3.5 } }) end):find("create_subprocess_exec: pass_fds[1] must be a file descriptor (an integer >= 0), got 3.5", 1, true))
    assert.is_truthy(support.raises(function() exec("true", { pass_fds = { "3" } }) end):find("create_subprocess_exec: pass_fds[1] must be a file descriptor (an integer >= 0), got string", 1, true))
    assert.has_error(function() exec("true", { pass_fds = { 2 ^ 40 // 1 } }) end)
    assert.is_truthy(support.raises(function() exec("true", { pass_fds = { x = 3 } }) end):find("create_subprocess_exec: pass_fds must be a list of file descriptors, got key x", 1, true))
    assert.is_truthy(support.raises(function() shell("true", { close_fds = "no" }) end):find("create_subprocess_shell: option 'close_fds' must be a boolean, got string", 1, true))
  end)
end)

describe("communicate", function()
  it("sends input and collects output", function()
    local p = await(exec("cat", { stdin = PIPE, stdout = PIPE }))
    local out, err = await(p:communicate("some input\n"))
    assert.are.equal("some input\n", out)
    assert.is_nil(err)
    assert.are.equal(0, p.returncode)
  end)

  it("big input and big output at once do not deadlock", function()
    local input = ("0123456789abcde\n"):rep(200000) -- 3.2 MB
    local p = await(exec("cat", { stdin = PIPE, stdout = PIPE }))
    local out = await(p:communicate(input))
    assert.are.equal(#input, #out)
    assert.is_true(out == input)
  end)

  it("10 MiB on stdout and stderr at once", function()
    local p = await(shell("head -c 10485760 /dev/zero & head -c 10485760 /dev/zero >&2; wait",
      { stdout = PIPE, stderr = PIPE }))
    local out, err = await(p:communicate())
    assert.are.equal(10485760, #out)
    assert.are.equal(10485760, #err)
    assert.are.equal(0, p.returncode)
  end)

  it("yes | head: a pipeline inside the shell", function()
    local p = await(shell("yes | head -n 1000", { stdout = PIPE }))
    local out = await(p:communicate())
    assert.are.equal(("y\n"):rep(1000), out)
    assert.are.equal(0, p.returncode)
  end)

  it("input to a child that exits without reading is no error", function()
    local p = await(exec("true", { stdin = PIPE }))
    await(p:wait())
    local _, err = await(p:communicate(("x"):rep(1000000)))
    assert.is_nil(err)
    assert.are.equal(0, p.returncode)
  end)

  it("without pipes returns nil, nil", function()
    local p = await(exec("true"))
    assert.are.same({ n = 2 }, table.pack(await(p:communicate())))
    assert.has_error(function() await(p:communicate("input")) end)
  end)

  it("writing to a child that is gone raises BrokenPipeError", function()
    local p = await(exec("true", { stdin = PIPE }))
    await(p:wait())
    local ok, err = pcall(function()
      for _ = 1, 100 do
        p.stdin:write(("x"):rep(65536))
        await(p.stdin:drain())
      end
    end)
    assert.is_false(ok)
    assert.is_true(asyncio.BrokenPipeError:is(err) or asyncio.ConnectionError:is(err), tostring(err))
    p.stdin:close()
  end)
end)

describe("processes and the loop", function()
  it("many concurrent processes", function()
    local aws = {}
    for i = 1, 60 do
      aws[i] = asyncio.create_task(function()
        local p = await(exec("sh", "-c", "sleep 0.0$((RANDOM % 5)); echo " .. i, { stdout = PIPE }))
        local out = await(p:communicate())
        return tonumber(out), p.returncode
      end)
    end
    local got = { await(asyncio.gather(table.unpack(aws))) }
    for i = 1, 60 do assert.are.equal(i, got[i]) end
  end)

  it("a process dropped while running is reaped", function()
    for _ = 1, 5 do await(exec("sleep", "0.01")) end
    collectgarbage()
    collectgarbage()
    await(asyncio.sleep(0.1))
    local p = await(exec("true"))
    assert.are.equal(0, await(p:wait()))
  end)

  it("a script ends only once its children have exited", function()
    local h = io.popen(alua .. [[ -e 'await(asyncio.create_subprocess_shell("sleep 0.2; echo late")) print("main done")' 2>&1]])
    assert.are.equal("main done\nlate\n", h:read("a"))
    h:close()
  end)

  it("the pipes' limit option bounds readline", function()
    local p = await(shell("printf '%0100d\\n' 0", { stdout = PIPE, limit = 16 }))
    local ok, err = pcall(await, p.stdout:readline())
    assert.is_false(ok)
    assert.is_true(asyncio.LimitOverrunError:is(err) or asyncio.IncompleteReadError:is(err), tostring(err))
    p:kill()
    await(p:wait())
  end)

  it("is exposed as asyncio.subprocess too", function()
    assert.are.equal(PIPE, asyncio.subprocess.PIPE)
    assert.are.equal(-1, PIPE)
    assert.are.equal(-2, STDOUT)
    assert.are.equal(-3, DEVNULL)
    assert.are.equal(exec, asyncio.subprocess.create_subprocess_exec)
  end)
end)
