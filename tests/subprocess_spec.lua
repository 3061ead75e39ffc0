-- subprocess_spec.lua — create_subprocess_exec/shell with real programs: pipes are
-- StreamReader/StreamWriter, exit status and signals, communicate without deadlock.

local support = require "tests.support"
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
    assert.has_error(function() exec("echo", { bogus = 1 }) end,
      "create_subprocess_exec: unknown option 'bogus' (expected stdin, stdout, stderr, cwd, env, limit)")
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
