-- porting_spec.lua — the traps a Python or Node user fell into while porting programs
-- with only the docs (issue 17), each written the way that user wrote it. The numbers
-- are the issue's items; the contract is section 9 of the design's API.md.

local support = require "tests.support"
local raises = support.raises

after_each(support.expect_no_tasks_left)

describe("11. task-local context and JSON, for servers", function()
  it("a request id set in each handler is what its log lines and its subtasks see", function()
    local request_id = asyncio.ContextVar("request_id", "-")
    local lines = {}
    local function log(msg) lines[#lines + 1] = request_id:get() .. " " .. msg end
    local async function handle(id, delay)
      request_id:set(id)
      await asyncio.sleep(delay)
      await asyncio.create_task(function() log("subtask") end)
      log("done")
    end
    log("start")
    await asyncio.gather(handle("a", 0.02), handle("b", 0))
    log("end")
    table.sort(lines)
    assert.are.same({ "- end", "- start", "a done", "a subtask", "b done", "b subtask" }, lines)
  end)

  it("a task sees the values of its creator when it was created, not later changes", function()
    local user = asyncio.ContextVar("user")
    local token = user:set("alice")
    local seen = asyncio.Event()
    local child = asyncio.create_task(function()
      await seen:wait()
      local before = user:get()
      user:set("carol")              -- changes only the child's own context
      return before, user:get()
    end)
    user:set("bob")
    seen:set()
    assert.are.same({ "alice", "carol" }, { await child })
    assert.are.equal("bob", user:get())
    user:reset(token)
    assert.are.equal("nil", tostring(user:get(nil)))
  end)

  it("get without a value or default raises, as Python's LookupError; reset checks its token", function()
    local v = asyncio.ContextVar("v")
    assert.matches("ContextVar:get: 'v' has no value here and no default", raises(v.get, v))
    assert.are.equal("fallback", v:get("fallback"))
    local token = v:set(1)
    v:set(nil)
    assert.is_nil(v:get("ignored"))             -- set to nil is a value
    v:reset(token)
    assert.matches("has no value", raises(v.get, v))
    assert.matches("already used", raises(v.reset, v, token))
    assert.matches("another ContextVar", raises(v.reset, v, asyncio.ContextVar("w"):set(2)))
    local other = await asyncio.create_task(function() return v:set(3) end)
    assert.matches("another task's context", raises(v.reset, v, other))
    assert.matches("call it as var:get", raises(v.get))
    assert.are.equal("<ContextVar name='v'>", tostring(v))
  end)

  -- Python runs each callback in a copy of the context current when it was scheduled
  -- (Handle's context=None: copy_context()): a request id logged from a timer or a done
  -- callback is the request's, whatever the top level or other requests set.
  it("call_soon, call_later and call_at callbacks see the scheduling task's values", function()
    local request_id = asyncio.ContextVar("request_id", "-")
    local loop = asyncio.get_running_loop()
    local token = request_id:set("top")
    local seen, all = {}, asyncio.Event()
    local function log(what)
      seen[#seen + 1] = what .. "=" .. request_id:get()
      if #seen == 6 then all:set() end
    end
    local async function handler(id)
      request_id:set(id)
      loop:call_soon(log, "soon")
      loop:call_later(0.01, log, "later")
      loop:call_at(loop:time() + 0.005, log, "at")
      request_id:set(id .. "-changed") -- after scheduling: the callbacks keep their copy
    end
    await asyncio.gather(handler("a"), handler("b"))
    await asyncio.wait_for(all:wait(), 5 * support.SLOWDOWN)
    table.sort(seen)
    assert.are.same({ "at=a", "at=b", "later=a", "later=b", "soon=a", "soon=b" }, seen)
    assert.are.equal("top", request_id:get())
    request_id:reset(token)
  end)

  it("a done callback sees the values of the code that added it", function()
    local user = asyncio.ContextVar("user", "nobody")
    local fut = asyncio.Future()
    local got = asyncio.Future()
    await asyncio.create_task(function()
      user:set("alice")
      fut:add_done_callback(function(f) got:set_result(user:get(), f:result()) end)
    end)
    user:set("bob")
    fut:set_result(42)
    assert.are.same({ "alice", 42 }, { await got })
  end)

  it("a callback's set stays in its copy; tasks it creates inherit that copy", function()
    local v = asyncio.ContextVar("v", "unset")
    local loop = asyncio.get_running_loop()
    local token = v:set("scheduler")
    local results = asyncio.Future()
    loop:call_soon(function()
      v:set("callback")
      local t = asyncio.create_task(function() return v:get() end)
      t:add_done_callback(function() results:set_result(t:result(), v:get()) end)
    end)
    loop:call_soon(function() v:set(v:get() .. "+second") end) -- its own copy as well
    local inner, in_done = await results
    assert.are.equal("callback", inner)    -- the task made in the callback
    assert.are.equal("callback", in_done)  -- a done callback added there: that copy
    await asyncio.sleep(0)
    assert.are.equal("scheduler", v:get()) -- neither callback changed the scheduler's
    v:reset(token)
  end)

  it("a signal handler runs in the context current when it was added", function()
    local v = asyncio.ContextVar("v", "unset")
    local got = asyncio.Future()
    local token = v:set("added")
    asyncio.add_signal_handler("SIGUSR1", function() if not got:done() then got:set_result(v:get()) end end)
    v:set("later")
    assert.is_true(os.execute("kill -USR1 $PPID")) -- the shell's parent: this alua
    local ok, value = pcall(function() return await asyncio.wait_for(got, 5 * support.SLOWDOWN) end)
    asyncio.remove_signal_handler("SIGUSR1")
    v:reset(token)
    assert.is_true(ok, tostring(value))
    assert.are.equal("added", value)
  end)

  it("require 'cjson' works (Debian's lua-cjson)", function()
    local cjson = require "cjson"
    assert.are.same({ id = 7, tags = { "a", "b" } }, cjson.decode(cjson.encode({ id = 7, tags = { "a", "b" } })))
  end)
end)

describe("1. gather with a list and options; options are checked", function()
  local async function fetch(name, fail)
    await asyncio.sleep(0.01)
    if fail then error(name .. ": 503", 0) end
    return name .. " ok"
  end

  it("await asyncio.gather({a, b}) (the Promise.all habit) gathers the list", function()
    local results = table.pack(await asyncio.gather({ fetch("a"), fetch("b") }))
    assert.are.same({ n = 2, "a ok", "b ok" }, results)
  end)

  it("gather(list, {return_exceptions = true}) gathers every task, not only the first", function()
    local jobs = {}
    for i = 1, 5 do jobs[i] = fetch("job" .. i, i == 3) end
    local results = table.pack(await asyncio.gather(jobs, { return_exceptions = true }))
    assert.are.equal(5, results.n)
    assert.are.equal("job5 ok", results[5])
    assert.are.equal("job3: 503", tostring(results[3]))
  end)

  it("a misspelt option is an error at the user's line that names the nearest one", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() return asyncio.gather({ asyncio.sleep(0) }, { return_exception = true }) end)
    assert.is_false(ok)
    assert.are.equal(("tests/porting_spec.lua:%d: gather: unknown option 'return_exception' (did you mean 'return_exceptions'?)"):format(line), err)
    assert.matches("gather: option 'return_exceptions' must be a boolean, got string",
      raises(asyncio.gather, { asyncio.sleep(0) }, { return_exceptions = "yes" }))
    assert.matches("options go in a second table",
      raises(asyncio.gather, { asyncio.sleep(0), return_exceptions = true }))
    -- every options table is checked, as create_subprocess_exec's always was
    assert.matches("porting_spec.lua:%d+: open_connection: unknown option 'timout' %(did you mean 'timeout'%?%)",
      raises(function() local r, w = await asyncio.open_connection("127.0.0.1", 1, { timout = 1 }) return r, w end))
    assert.matches("porting_spec.lua:%d+: open_unix_connection: unknown option 'timout' %(did you mean 'timeout'%?%)",
      raises(function() local r, w = await asyncio.open_unix_connection("/nonexistent", { timout = 1 }) return r, w end))
    assert.matches("porting_spec.lua:%d+: start_server: unknown option 'backlg' %(did you mean 'backlog'%?%)",
      raises(function() local s = await asyncio.start_server(print, "127.0.0.1", 0, { backlg = 10 }) return s end))
    assert.matches("porting_spec.lua:%d+: wait: option 'timeout' must be a number, got string",
      raises(function() local d = await asyncio.wait({ asyncio.sleep(0) }, { timeout = "1" }) return d end))
  end)
end)

describe("1b. what the user who wrote {timout = 1} wanted: a bound on connecting", function()
  it("open_connection's timeout bounds the whole connection, the TLS handshake included", function()
    -- a server that accepts and never answers: the TLS handshake waits for it
    local server <close> = await asyncio.start_server(function(r, w)
      local _ = await r:read()
      w:close()
    end, "127.0.0.1", 0)
    local host, port = server:sockname()
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    local err = raises(function()
      local r, w = await asyncio.open_connection(host, port, { ssl = { verify = false }, timeout = 0.2 })
      return r, w
    end)
    local elapsed = loop:time() - t0
    assert.is_true(asyncio.TimeoutError:is(err), tostring(err))
    assert.are.equal(("open_connection: no connection to %s port %d within 0.2 s"):format(host, port), err.message)
    assert.is_true(elapsed >= 0.19 and elapsed < 5 * support.SLOWDOWN, "took " .. elapsed .. " s")
    -- a connection made in time is not affected, nor is anything after it
    local r, w = await asyncio.open_connection(host, port, { timeout = 5 * support.SLOWDOWN })
    await asyncio.sleep(0.05)
    w:write("still open")
    await w:drain()
    assert.is_false(w:is_closing())
    w:close()
    assert.matches("open_connection: option 'timeout' must be a number",
      raises(function() local a, b = await asyncio.open_connection(host, port, { timeout = "1" }) return a, b end))
    assert.is_truthy(r)
  end)

  it("open_unix_connection takes the same timeout", function()
    local path = os.tmpname()
    os.remove(path)
    local server <close> = await asyncio.start_unix_server(function(r, w)
      local _ = await r:read()
      w:close()
    end, path)
    local err = raises(function()
      local r, w = await asyncio.open_unix_connection(path,
        { ssl = { verify = false }, timeout = 0.1 })
      return r, w
    end)
    assert.is_true(asyncio.TimeoutError:is(err), tostring(err))
    assert.are.equal(("open_unix_connection: no connection to %s within 0.1 s"):format(path), err.message)
  end)
end)

describe("5. with return_exceptions a failure can be told from a result", function()
  it("asyncio.is_error tells a user's error string from a string result", function()
    local async function lookup(key)
      if key == "missing" then error("no such key: " .. key, 0) end
      return "value of " .. key
    end
    local a, b, c = await asyncio.gather(lookup("x"), lookup("missing"),
      asyncio.wait_for(asyncio.sleep(1), 0.01), { return_exceptions = true })
    assert.are.equal("value of x", a)
    assert.is_false(asyncio.is_error(a))
    assert.is_true(asyncio.is_error(b))
    assert.are.equal("no such key: missing", b.error)    -- the value as raised
    assert.are.equal("no such key: missing", tostring(b))
    assert.is_true(asyncio.is_error(c) and asyncio.TimeoutError:is(c))
    assert.is_false(asyncio.is_error("no such key: missing"))
    assert.is_false(asyncio.is_error(nil))
  end)
end)

describe("8. one process's output piped into another", function()
  local PIPE = asyncio.PIPE

  it("create_subprocess_exec('grep', ..., {stdin = p1.stdout}) is a shell pipeline", function()
    local p1 = await asyncio.create_subprocess_exec("printf", "apple\nbanana\ncherry\n", { stdout = PIPE })
    local p2 = await asyncio.create_subprocess_exec("grep", "an", { stdin = p1.stdout, stdout = PIPE })
    local out = await p2:communicate()
    assert.are.equal("banana\n", out)
    assert.are.same({ 0, 0 }, { await p1:wait(), await p2:wait() })
  end)

  it("output the parent already read into p1.stdout reaches the second process too", function()
    local p1 = await asyncio.create_subprocess_exec("seq", "1", "20000", { stdout = PIPE })
    await asyncio.sleep(0.1)                   -- p1.stdout has read some of it meanwhile
    local p2 = await asyncio.create_subprocess_exec("wc", "-l", { stdin = p1.stdout, stdout = PIPE })
    assert.are.equal("20000", (await p2:communicate()):match("%d+"))
    await p1:wait()
  end)

  it("a wrong stdin value is named in the error, at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(asyncio.create_subprocess_exec, "cat", { stdin = "input.txt" })
    assert.is_false(ok)
    assert.are.equal(("tests/porting_spec.lua:%d: create_subprocess_exec: stdin must be asyncio.PIPE, "
      .. "asyncio.DEVNULL, a file descriptor, another process's stdout or nil (inherit), got \"input.txt\""):format(line), err)
  end)
end)

describe("6. a forgotten await or async says where", function()
  it("a never-awaited coroutine is reported with the file:line that made it", function()
    local out, status = support.run_alua([[
local async function save(record) await asyncio.sleep(0) return record end
local async function main()
  for i = 1, 2 do
    save(i)                         -- forgot the await
  end
end
await main()
collectgarbage()
print("done")
]])
    assert.are.equal(0, status)
    assert.matches("RuntimeWarning: coroutine 'save' was never awaited %(created at [^)]*:4%)", out)
  end)

  it("to_thread and wait_for never awaited: reported at the user's line, not the stdlib's", function()
    local out, status = support.run_alua([[
local function work() return 1 end
local async function job() end
local function forget()
  asyncio.to_thread(work)           -- forgot the await
  asyncio.wait_for(job(), 1)        -- here too
end
forget()
collectgarbage()
collectgarbage()
print("done")
]])
    assert.are.equal(0, status)
    assert.matches("RuntimeWarning: coroutine 'to_thread' was never awaited %(created at [^)]*:4%)", out)
    assert.matches("RuntimeWarning: coroutine 'wait_for' was never awaited %(created at [^)]*:5%)", out)
    assert.is_nil(out:find("stdlib/", 1, true), out)
  end)

  it("forgetting async: the error says what was given and why, at the user's line", function()
    local function fetch(id) return id * 10 end          -- the user forgot `async`
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() return asyncio.gather(fetch(1), fetch(2)) end)
    assert.is_false(ok)
    assert.are.equal(("tests/porting_spec.lua:%d: gather: expected a coroutine object, Task or Future, "
      .. "got number (the result of a function declared without 'async'? calling one runs it at once)"):format(line), err)
    assert.matches("porting_spec.lua:%d+: await: expected .* got number %(the result of a function declared without 'async'",
      raises(function() local v = await fetch(3) return v end))
  end)
end)

describe("2. a failing background task in a server that keeps running", function()
  it("is reported within a second, not when the program ends; one kept to await later is not", function()
    local out, status = support.run_alua([[
local server <close> = await asyncio.start_server(function(r, w) w:close() end, "127.0.0.1", 0)
local async function refresh_cache()
  await asyncio.sleep(0.05)
  error("cache refresh failed", 0)
end
local function on_request()
  asyncio.create_task(refresh_cache())   -- fire and forget
end
on_request()
local kept = asyncio.create_task(function() await asyncio.sleep(0.05) error("kept for later", 0) end)
await asyncio.sleep(2.5)                 -- the server keeps running
io.stderr:write("2.5 s later\n")
local ok, err = pcall(await, kept)
io.stderr:write("awaited: ", err, "\n")
]])
    assert.are.equal(0, status)
    local report = out:find("Task exception was never retrieved\ncache refresh failed", 1, true)
    local mark = out:find("2.5 s later", 1, true)
    assert.is_truthy(report, out)
    assert.is_truthy(mark < out:find("awaited: kept for later", 1, true), out)
    assert.is_true(report < mark, "reported only after 2.5 s:\n" .. out)
    local _, reports = out:gsub("never retrieved", "")
    assert.are.equal(1, reports, out)
  end)
end)

describe("7. TaskGroup and timeout at the top level, as await works there", function()
  it("async with asyncio.timeout(...) ported as a <close> scope at the top level", function()
    local ok, err = pcall(function()
      local t <close> = asyncio.timeout(0.05)
      await asyncio.sleep(10)
    end)
    assert.is_false(ok)
    assert.is_true(asyncio.TimeoutError:is(err), tostring(err))
    do
      local t <close> = asyncio.timeout_at(asyncio.get_running_loop():time() + 5)
      assert.are.equal("in time", (await asyncio.sleep(0.01, "in time")))
    end
  end)

  it("async with asyncio.TaskGroup() as tg at the top level: waits, and a failure stops the body", function()
    local fetched = {}
    do
      local tg <close> = asyncio.TaskGroup()
      for _, url in ipairs { "a", "b" } do
        tg:create_task(function() await asyncio.sleep(0.01) fetched[#fetched + 1] = url end)
      end
    end
    table.sort(fetched)
    assert.are.same({ "a", "b" }, fetched)
    local reached = false
    local ok, eg = pcall(function()
      local tg <close> = asyncio.TaskGroup()
      tg:create_task(function() await asyncio.sleep(0.01) error("disk full", 0) end)
      await asyncio.sleep(10)
      reached = true
    end)
    assert.is_false(ok or reached)
    assert.are.same({ "disk full" }, eg.errors)
    -- the top level's cancellation was undone: its next await is an ordinary one
    assert.are.equal("after", (await asyncio.sleep(0.001, "after")))
  end)
end)

describe("3. a chat client closing its writer while another task reads", function()
  local function chat_server()
    return asyncio.start_server(function(reader, writer)
      writer:write("welcome\nfirst message\n")
      for line in reader:lines() do writer:write("echo: " .. line .. "\n") end
      writer:close()
    end, "127.0.0.1", 0)
  end

  it("the reading task gets what was buffered, then '' (Python's b''), not an error", function()
    local server <close> = await chat_server()
    local reader, writer = await asyncio.open_connection(server:sockname())
    local _ <close> = writer                          -- closed even if a check fails
    assert.are.equal("welcome\n", await reader:readline())
    await asyncio.sleep(0.05)                     -- "first message" arrives meanwhile
    local received = {}
    local receiver = asyncio.create_task(function()
      while true do
        local line = await reader:readline()
        if line == "" then break end              -- the Python chat client's loop
        received[#received + 1] = line
      end
      return "receiver ended"
    end)
    await asyncio.sleep(0)
    writer:close()                                -- the user typed /quit
    assert.are.equal("receiver ended", await asyncio.wait_for(receiver, 1))
    assert.are.same({ "first message\n" }, received)
    for line in reader:lines() do error("no more lines: " .. line) end
  end)

  it("writer:abort() closes at once, dropping what is queued: the peer sees a reset", function()
    local peer_saw = asyncio.Future()
    local server <close> = await asyncio.start_server(function(reader, writer)
      peer_saw:set_result(pcall(await, reader:read()))
      writer:close()
    end, "127.0.0.1", 0)
    local reader, writer = await asyncio.open_connection(server:sockname())
    local _ <close> = writer                         -- closed even if a check fails
    writer:write(string.rep("x", 4 * 1024 * 1024))   -- far more than the socket takes at once
    writer:abort()
    assert.is_true(writer:is_closing())
    local ok, err = await asyncio.wait_for(peer_saw, 2)
    assert.is_true(not ok and asyncio.ConnectionError:is(err) and err.errno == "ECONNRESET"
      or ok and #err < 4 * 1024 * 1024, tostring(err))
    assert.are.equal("", await reader:read())
  end)
end)

describe("4. a bad argument is reported at the user's line; '.' for ':' says so", function()
  -- out's i-th line is the error want[i] = {line, text}: at that line of the script, with
  -- no line of the stdlib in it. Returns out's lines.
  local function errors_at_lines(out, want)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    for i, w in ipairs(want) do
      local line = lines[i] or "(nothing)"
      assert.are.equal(":" .. w[1] .. ":", line:match(":%d+:"), line)
      assert.is_nil(line:find("stdlib/", 1, true), line)
      assert.is_truthy(line:find(w[2], 1, true), line)
    end
    return lines
  end

  it("await asyncio.wait_for(..., '1') names the user's line, not stdlib/asyncio.lua", function()
    local line = debug.getinfo(1, "l").currentline + 2
    local ok, err = pcall(function()
      local r = await asyncio.wait_for(asyncio.sleep(0.01), "1")
      return r
    end)
    assert.is_false(ok)
    -- the value shown as what it is: a string "1", not a 1 that looks like a number
    assert.are.equal(('tests/porting_spec.lua:%d: wait_for: timeout must be a number of seconds or nil, got string "1"'):format(line), err)
    assert.matches('timeout: delay must be a number of seconds or nil, got string "0.5"$', raises(asyncio.timeout, "0.5"))
    assert.matches("timeout: delay must be a number of seconds or nil, got NaN$", raises(asyncio.timeout, 0 / 0))
    assert.matches("timeout_at: when must be a number of seconds or nil, got table$", raises(asyncio.timeout_at, {}))
  end)

  it("await asyncio.sleep('x'), to_thread(42), start_worker(42): the user's line, in a task or not", function()
    -- at a script's top level, where await_call runs them through a closure of the stdlib,
    -- and in a task
    local out = support.run_alua([[
local function try(fn) local ok, err = pcall(fn) print(err) end
try(function() local r = await asyncio.sleep("x") return r end)
try(function() local r = await asyncio.sleep(0 / 0) return r end)
try(function() local r = await asyncio.to_thread(42) return r end)
try(function() local r = await asyncio.start_worker(42) return r end)
try(function() local r = await asyncio.to_thread(function(x) return x end, { f = print }) return r end)
await asyncio.create_task(function()
  try(function() local r = await asyncio.sleep("x") return r end)
  try(function() local r = await asyncio.to_thread(42) return r end)
  try(function() local r = await asyncio.start_worker(42) return r end)
end)
]])
    local want = {
      { 2, 'sleep: delay must be a number of seconds, got string "x"' },
      { 3, "sleep: delay is NaN" },
      { 4, 'to_thread: expected a function or "module:function", got number' },
      { 5, "start_worker: expected the path of a script, got number" },
      { 6, "to_thread: arg[1].f is a function" },
      { 8, 'sleep: delay must be a number of seconds, got string "x"' },
      { 9, 'to_thread: expected a function or "module:function", got number' },
      { 10, "start_worker: expected the path of a script, got number" },
    }
    errors_at_lines(out, want)
  end)

  it("the calls the audit of session 9 found reporting a line of the stdlib, or none", function()
    local out = support.run_alua([[
local function try(fn) local ok, err = pcall(fn) print(ok and "(no error)" or err) end
local t = asyncio.create_task(function() await asyncio.sleep(10) end)
local u = await asyncio.open_udp { local_addr = { "127.0.0.1", 0 } }
local p = await asyncio.create_subprocess_exec("sleep", "10", { stdin = asyncio.PIPE })
local f = await asyncio.fs.open(os.tmpname(), "w")
await f:close()
local pq = asyncio.PriorityQueue()
pq:put_nowait({ 1 })
try(function() local r = asyncio.run(42) return r end)
try(function() local r = t:get_stack("x") return r end)
try(function() local r = t:print_stack(1, 5) return r end)
try(function() local r = asyncio.print_tasks(5) return r end)
try(function() local r = asyncio.Queue().qsize() return r end)
try(function() local r = pq:put_nowait({ 2 }) return r end)
try(function() local r = await asyncio.open_connection("127.0.0.1", 70000) return r end)
try(function() local s = await asyncio.start_server(print, "127.0.0.1", -1) return s end)
try(function() local l = await asyncio.getaddrinfo("localhost", 80, { family = "bogus" }) return l end)
try(function() local l = await asyncio.getaddrinfo("localhost", 80, { type = "raw" }) return l end)
try(function() local r = u:sendto("x") return r end)
try(function() local r = u:sendto("x", "127.0.0.1", "x") return r end)
try(function() local r = u:sendto("x", "not-an-ip", 9) return r end)
try(function() local r = p:send_signal("SIGBOGUS") return r end)
try(function() local d = await f:read(1) return d end)
try(function() local g = await asyncio.fs.open("/tmp/x", "bogus") return g end)
try(function() local c = asyncio.Condition() local r = await c:wait() return r end)
try(function() local s = await asyncio.start_server(print, "127.0.0.1", 0, { ssl = {} }) return s end)
try(function() local r = await asyncio.open_connection("127.0.0.1", 1, { ssl = true, ssl_handshake_timeout = -1 }) return r end)
try(function() local r = await asyncio.open_connection("127.0.0.1", 1, { ssl = { on_handshake_error = print } }) return r end)
try(function() local r = p.stdin:writelines({ "a", {} }) return r end)
try(function() local r = await asyncio.wait_for(42, 1) return r end)
try(function() local r = await asyncio.shield(42) return r end)
try(function() local r = await asyncio.wait({ 42 }) return r end)
try(function() for _ in asyncio.as_completed({ 42 }) do end end)
try(function() local r = asyncio.print_tasks({}) return r end)
try(function() local c = asyncio.Condition() local l <close> = await c:acquire() local r = await c:wait_for(5) return r end)
try(function() local r = p.stdin:set_write_buffer_limits("x") return r end)
try(function() local s = await require("asyncio.http").serve(print, "127.0.0.1", 0) local _ <close> = s local r = s.sockname() return r end)
try(function() local r = await asyncio.fs.mkdir("/tmp/x", {}) return r end)
try(function() local r = await asyncio.fs.open("/tmp/x", {}) return r end)
try(function() local r = await require("asyncio.http").post("http://127.0.0.1:1/", "body", 5) return r end)
t:cancel() u:close() p:kill() await p:wait()
]])
    local want = {
      { 9, "asyncio.run: expected a coroutine object, an awaitable or a function, got number" },
      { 10, 'Task:get_stack: limit must be an integer or nil, got string "x"' },
      { 11, "Task:print_stack: file must be a file (io.stderr, io.open's) or nil, got 5" },
      { 12, "print_tasks: file must be a file (io.stderr, io.open's) or nil, got 5" },
      { 13, "Queue:qsize: call it as queue:qsize() (with ':', not '.')" },
      { 14, "PriorityQueue:put: the item cannot be compared with the queued ones (attempt to compare two table values" },
      { 15, "open_connection: port must be in 0..65535, got 70000" },
      { 16, "start_server: port must be in 0..65535, got -1" },
      { 17, "getaddrinfo: unknown family 'bogus'" },
      { 18, "getaddrinfo: unknown type 'raw'" },
      { 19, "sendto: no address: give host and port, or open with remote_addr" },
      { 20, 'sendto: port must be an integer in 1..65535, got string "x"' },
      { 21, "sendto: 'not-an-ip' is not an IP address" },
      { 22, "send_signal: unknown signal 'SIGBOGUS'" },
      { 23, "attempt to use a closed file" },
      { 24, "fs.open: invalid mode 'bogus'" },
      { 25, "Condition:wait: the lock is not acquired" },
      { 26, "start_server: a TLS server needs ssl.certfile (and keyfile)" },
      { 27, "open_connection: ssl_handshake_timeout must be a positive number, got -1" },
      { 28, "open_connection: on_handshake_error is a server option" },
      { 29, "writelines: expected a list of strings, got a table at index 2" },
      { 30, "wait_for: expected a coroutine object, Task or Future, got number" },
      { 31, "shield: expected a coroutine object, Task or Future, got number" },
      { 32, "wait: expected a coroutine object, Task or Future, got number" },
      { 33, "as_completed: expected a coroutine object, Task or Future, got number" },
      { 34, "print_tasks: file must be a file (io.stderr, io.open's) or nil, got table" },
      { 35, "Condition:wait_for: the predicate must be a function, got number" },
      { 36, 'set_write_buffer_limits: high must be a number of bytes >= 0 or nil, got string "x"' },
      { 37, "http.Server:sockname: call it as server:sockname() (with ':', not '.')" },
      { 38, "fs.mkdir: mode must be an integer" },
      { 39, "fs.open: mode must be a string, got table" },
      { 40, "http.request: the options must be a table, got number" },
    }
    local lines = errors_at_lines(out, want)
    assert.are.equal(#want, #lines, out)
  end)

  it("asyncio.http's options and arguments: the user's line, the nearest known option", function()
    local http = require "asyncio.http"
    local line = debug.getinfo(1, "l").currentline + 1
    local err = raises(function() local r = await http.get("http://127.0.0.1:1/", { timout = 1 }) return r end)
    assert.are.equal(("tests/porting_spec.lua:%d: http.request: unknown option 'timout' (did you mean 'timeout'?)"):format(line), err)
    assert.matches("porting_spec.lua:%d+: http.request: option 'headers' must be a table, got string$",
      raises(function() local r = await http.get("http://127.0.0.1:1/", { headers = "x" }) return r end))
    assert.matches("porting_spec.lua:%d+: http.request: unsupported URL 'ftp://x/'",
      raises(function() local r = await http.get("ftp://x/") return r end))
    assert.matches("porting_spec.lua:%d+: http.Client: unknown option 'max_per_hst' %(did you mean 'max_per_host'%?%)",
      raises(function() local c = http.Client { max_per_hst = 1 } return c end))
    assert.matches("porting_spec.lua:%d+: http.serve: unknown option 'max_requsts' %(did you mean 'max_requests'%?%)",
      raises(function() local s = await http.serve(print, "127.0.0.1", 0, { max_requsts = 1 }) return s end))
  end)

  it("set_write_buffer_limits takes numeric strings, as Lua's number arguments do", function()
    local server <close> = await asyncio.start_server(function(_, w) w:close() end, "127.0.0.1", 0)
    local _, w = await asyncio.open_connection(server:sockname())
    local _ <close> = w
    w:set_write_buffer_limits("100", "10")           -- the audit's check refused these at first
    w:set_write_buffer_limits(100)
    assert.matches("low must be a number of bytes >= 0 or nil, got %-1", raises(w.set_write_buffer_limits, w, 100, -1))
  end)

  it("an IP address with a service name for the port is looked up, not taken as port 0", function()
    -- (an unknown service: no /etc/services needed; before, this tried port 0)
    local err = raises(function()
      local r = await asyncio.open_connection("127.0.0.1", "no-such-service-audit")
      return r
    end)
    assert.is_true(asyncio.OSError:is(err), tostring(err))
    assert.are.equal("EAI_SERVICE", err.errno, tostring(err))
  end)

  it("await r.readline() says how to call it, for streams and every other class", function()
    local server <close> = await asyncio.start_server(function(_, w) w:close() end, "127.0.0.1", 0)
    local r, w = await asyncio.open_connection(server:sockname())
    local _ <close> = w                               -- closed even if a check fails
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() local l = await r.readline() return l end)
    assert.is_false(ok)
    assert.are.equal(("tests/porting_spec.lua:%d: StreamReader:readline: call it as reader:readline() (with ':', not '.')"):format(line), err)
    local calls = {
      { function() w.write("x") end, "StreamWriter:write: call it as writer:write()" },
      { function() w.close() end, "StreamWriter:close: call it as writer:close()" },
      { function() server.close() end, "Server:close: call it as server:close()" },
      { function() asyncio.Future().set_result(1) end, "Future:set_result: call it as fut:set_result()" },
      { function() asyncio.Queue().put_nowait(1) end, "Queue:put_nowait: call it as queue:put_nowait()" },
      { function() asyncio.Event().set() end, "Event:set: call it as event:set()" },
      { function() asyncio.Lock().locked() end, "Lock:locked: call it as lock:locked()" },
      { function() asyncio.ContextVar("v").get() end, "ContextVar:get: call it as var:get()" },
    }
    for _, case in ipairs(calls) do
      local err2 = raises(case[1])
      assert.is_truthy(err2:find("porting_spec.lua:%d+: " .. case[2]:gsub("%p", "%%%0")), err2)
    end
    w:close()
  end)
end)

describe("9. tracebacks show the user's frames", function()
  it("a failed open_connection's traceback folds alua's own frames into one line", function()
    local out, status = support.run_alua([[
local async function fetch()
  local reader, writer = await asyncio.open_connection("127.0.0.1", 1)
end
await fetch()
]])
    assert.are.equal(1, status)
    assert.matches("ConnectionError: connect: ECONNREFUSED", out)
    assert.matches("%(asyncio internals%)\n\t[^\n]*:4: in main chunk", out)
    assert.matches(":2: in function <[^\n]*:1>", out)             -- the awaited task's own line
    assert.not_matches("stdlib/", out)
    assert.not_matches("in local 'fn'", out)
  end)

  it("a connection callback's and an HTTP handler's reported errors fold alua's frames too", function()
    local out = support.run_alua([[
local s = await asyncio.start_server(function(r, w) local x = nil; return x.field end, "127.0.0.1", 0)
local r, w = await asyncio.open_connection(s:sockname())
await r:read()
s:close()
local http = require "asyncio.http"
local srv = await http.serve(function(req) error("handler failed") end, "127.0.0.1", 0)
local res = await http.get(("http://%s:%d/"):format(srv:sockname()))
print("status", res.status)
res:close()
srv:close()
]])
    assert.matches("Unhandled error in a client_connected_cb of start_server:\n[^\n]*:1: attempt to index a nil value", out)
    assert.matches("stack traceback:\n\t[^\n]*:1: in [^\n]*\n\t%(asyncio internals%)", out)
    assert.matches("http.serve: the handler failed %(GET /%):\n[^\n]*:6: handler failed", out)
    assert.matches(":6: in [^\n]*\n\t%(asyncio internals%)", out)
    assert.matches("status\t500", out)
    assert.not_matches("stdlib/", out)
  end)

  it("await's own C frame between the user's is alua's, folded as its stdlib frames are", function()
    local out, status = support.run_alua([[
local inner = async(function() error("boom") end)
local mid = async(function() local x = await(inner()); return x end)
local outer = async(function() local x = await(mid()); return x end)
asyncio.run(outer())
]])
    assert.are.equal(1, status)
    assert.matches(":1: boom", out)
    assert.matches(":1: in function <[^\n]*:1>\n\t%(asyncio internals%)\n\t[^\n]*:2: in function <[^\n]*:2>", out)
    assert.matches(":2: in function <[^\n]*:2>\n\t%(asyncio internals%)\n\t[^\n]*:3: in function <[^\n]*:3>", out)
    assert.not_matches("in function 'await'", out)
  end)

  it("return await(f()) is a tail call: the returning function's frame goes, as in plain Lua", function()
    -- as `return await f()` and any Lua tail call (core_await_spec: 300,000 levels deep)
    local out, status = support.run_alua([[
local inner = async(function() error("boom") end)
local mid = async(function() return await(inner()) end)
local outer = async(function() local x = await(mid()); return x end)
asyncio.run(outer())
]])
    assert.are.equal(1, status)
    assert.matches(":1: in function <[^\n]*:1>\n\t%(asyncio internals%)\n\t[^\n]*:3: in function <[^\n]*:3>", out)
    assert.not_matches(":2: in function", out)
  end)
end)
