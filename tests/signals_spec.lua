-- signals_spec.lua — add_signal_handler / remove_signal_handler: the process signals
-- itself through a shell ($PPID is alua), handlers run from the loop.

local Future, sleep = asyncio.Future, asyncio.sleep

after_each(function()
  for _, sig in ipairs { "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH" } do
    asyncio.remove_signal_handler(sig)
  end
  local left = asyncio.all_tasks()
  for _, t in ipairs(left) do t:cancel() end
  if #left > 0 then left[#left + 1] = { return_exceptions = true }; await(asyncio.gather(table.unpack(left))) end
  assert.are.equal(0, #left, "tasks left over by the spec")
end)

local function kill_self(sig)
  assert.is_true(os.execute("kill -" .. sig .. " $PPID"))
end

-- waits for f at most 5 s
local function within(f)
  return await(asyncio.wait_for(f, 5))
end

local alua = os.getenv("ALUA_BIN") or "build/bin/alua"

local function run_alua(code)
  local h = io.popen("timeout 10 " .. alua .. " -e '" .. code .. "' 2>&1; echo \"status=$?\"")
  local out = h:read("a")
  h:close()
  return out
end

describe("add_signal_handler", function()
  it("runs the handler with its arguments when the signal arrives", function()
    local got = Future()
    asyncio.add_signal_handler("SIGUSR1", function(a, b) got:set_result(a, b) end, "x", 42)
    kill_self("USR1")
    local a, b = within(got)
    assert.are.equal("x", a)
    assert.are.equal(42, b)
  end)

  it("runs it as a loop callback, outside any task, each time", function()
    local count, in_task, running = 0, nil, nil
    local third = Future()
    asyncio.add_signal_handler("SIGUSR2", function()
      count = count + 1
      in_task = asyncio.current_task()
      running = asyncio.get_running_loop():is_running()
      if count == 3 then third:set_result() end
    end)
    for _ = 1, 3 do
      kill_self("USR2")
      await(sleep(0.02))
    end
    within(third)
    assert.are.equal(3, count)
    assert.is_nil(in_task)
    assert.is_true(running)
  end)

  it("accepts names with or without SIG, and numbers", function()
    local got = Future()
    asyncio.add_signal_handler("HUP", function() got:set_result("hup") end)
    kill_self("HUP")
    assert.are.equal("hup", within(got))
    assert.is_true(asyncio.remove_signal_handler("SIGHUP"))
    local winch = Future()
    asyncio.add_signal_handler(28, function() winch:set_result("winch") end) -- SIGWINCH on Linux
    kill_self("WINCH")
    assert.are.equal("winch", within(winch))
  end)

  it("a second handler for a signal replaces the first", function()
    local log = {}
    local done = Future()
    asyncio.add_signal_handler("SIGUSR1", function() log[#log + 1] = "first" end)
    asyncio.add_signal_handler("SIGUSR1", function() log[#log + 1] = "second"; done:set_result() end)
    kill_self("USR1")
    within(done)
    assert.are.same({ "second" }, log)
  end)

  it("is also a method of the loop", function()
    local loop = asyncio.get_running_loop()
    local got = Future()
    loop:add_signal_handler("SIGUSR2", function(v) got:set_result(v) end, "loop")
    kill_self("USR2")
    assert.are.equal("loop", within(got))
    assert.is_true(loop:remove_signal_handler("SIGUSR2"))
  end)

  it("a handler can remove itself", function()
    local got = Future()
    asyncio.add_signal_handler("SIGUSR1", function()
      got:set_result(asyncio.remove_signal_handler("SIGUSR1"))
    end)
    kill_self("USR1")
    assert.is_true(within(got))
    assert.is_false(asyncio.remove_signal_handler("SIGUSR1"))
  end)

  it("a handler's error is reported and the handler stays", function()
    local calls = 0
    local second = Future()
    asyncio.add_signal_handler("SIGUSR1", function()
      calls = calls + 1
      if calls == 2 then second:set_result() end
      error("handler failed")
    end)
    kill_self("USR1")
    await(sleep(0.05))
    kill_self("USR1")
    within(second)
    assert.are.equal(2, calls)
  end)

  it("a top-level await waits for a signal when nothing else is pending", function()
    local got = Future()
    asyncio.add_signal_handler("SIGUSR2", function() got:set_result("woken") end)
    local sender = io.popen("sleep 0.2; kill -USR2 $PPID")
    assert.are.equal("woken", await(got))
    sender:close()
  end)

  it("rejects unknown names, uncatchable signals, async functions and non-functions", function()
    assert.has_error(function() asyncio.add_signal_handler("SIGFOO", print) end,
      "add_signal_handler: unknown signal 'SIGFOO' (expected a name such as \"SIGINT\", "
      .. "\"SIGTERM\", \"SIGHUP\", \"SIGUSR1\")")
    assert.has_error(function() asyncio.add_signal_handler("sigint", print) end)
    assert.has_error(function() asyncio.add_signal_handler({}, print) end)
    assert.has_error(function() asyncio.add_signal_handler(0, print) end)
    assert.has_error(function() asyncio.add_signal_handler("SIGKILL", print) end,
      "add_signal_handler: SIGKILL cannot be caught")
    assert.has_error(function() asyncio.add_signal_handler("SIGSTOP", print) end)
    local ok, err = pcall(asyncio.add_signal_handler, "SIGUSR1", async(function() end))
    assert.is_false(ok)
    assert.matches("async function", err)
    assert.has_error(function() asyncio.add_signal_handler("SIGUSR1", 42) end)
    assert.has_error(function() asyncio.remove_signal_handler("SIGNOPE") end)
  end)
end)

describe("remove_signal_handler", function()
  it("returns true when it removed one, false otherwise", function()
    assert.is_false(asyncio.remove_signal_handler("SIGUSR1"))
    asyncio.add_signal_handler("SIGUSR1", print)
    assert.is_true(asyncio.remove_signal_handler("SIGUSR1"))
    assert.is_false(asyncio.remove_signal_handler("SIGUSR1"))
  end)

  it("a removed handler's pending call does not run", function()
    local called = false
    asyncio.add_signal_handler("SIGUSR1", function() called = true end)
    -- keep a handler installed so the signal is not fatal while this one goes away
    asyncio.add_signal_handler("SIGUSR2", function() end)
    kill_self("USR1")
    -- the signal is read by the loop's next iteration; remove before the handler runs
    local t = asyncio.create_task(function() asyncio.remove_signal_handler("SIGUSR1") end)
    asyncio.add_signal_handler("SIGUSR1", function() end) -- a fresh one catches any late delivery
    await(t)
    await(sleep(0.05))
    assert.is_false(called)
  end)
end)

describe("signal handlers and the alua command", function()
  it("do not keep a finished script alive", function()
    assert.are.equal("done\nstatus=0\n",
      run_alua('asyncio.add_signal_handler("SIGTERM", print) print("done")'))
  end)

  it("a SIGTERM handler can stop a script that waits", function()
    local out = run_alua('local stop = asyncio.Future() ' ..
      'asyncio.add_signal_handler("SIGTERM", function() stop:set_result("stopping") end) ' ..
      'io.popen("sleep 0.1; kill -TERM $PPID") print(await(stop))')
    assert.are.equal("stopping\nstatus=0\n", out)
  end)

  it("a SIGINT handler replaces Ctrl-C's default; removing it restores that", function()
    local out = run_alua('local got = asyncio.Future() ' ..
      'asyncio.add_signal_handler("SIGINT", function() got:set_result("handled") end) ' ..
      'io.popen("kill -INT $PPID") print(await(got)) ' ..
      'asyncio.remove_signal_handler("SIGINT") ' ..
      'io.popen("sleep 0.1; kill -INT $PPID") await(asyncio.sleep(5)) print("not reached")')
    assert.are.equal("handled\nKeyboardInterrupt\nstatus=130\n", out)
  end)
end)
