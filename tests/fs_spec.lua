-- fs_spec.lua — asyncio.fs in a temporary directory: every call, its results and its
-- errors (OSError with errno, syscall and filename), file objects and their cleanup.

local support = require "tests.support"
local fs = asyncio.fs
local OSError = asyncio.OSError

local root -- a fresh directory per spec

before_each(function()
  root = os.tmpname()
  os.remove(root)
  await(fs.mkdir(root))
end)

after_each(function()
  os.execute("rm -rf '" .. root .. "'")
  local left = asyncio.all_tasks()
  for _, t in ipairs(left) do t:cancel() end
  if #left > 0 then left[#left + 1] = { return_exceptions = true }; await(asyncio.gather(table.unpack(left))) end
  assert.are.equal(0, #left, "tasks left over by the spec")
end)

local function p(name) return root .. "/" .. name end

-- the OSError an awaitable raises
local function oserror(aw)
  local ok, err = pcall(await, aw)
  assert.is_false(ok, "expected an error")
  assert.is_true(OSError:is(err), "not an OSError: " .. tostring(err))
  return err
end

local function open_fds()
  collectgarbage()
  collectgarbage()
  await(asyncio.sleep(0.02)) -- closes of collected files run on the thread pool
  local n = 0
  for _ in ipairs(await(fs.scandir("/proc/self/fd"))) do n = n + 1 end
  return n
end

describe("fs.read_file and fs.write_file", function()
  it("round-trip text and binary data", function()
    local data = "line 1\nline 2\0with a zero\255\n"
    await(fs.write_file(p("a"), data))
    assert.are.equal(data, await(fs.read_file(p("a"))))
    await(fs.write_file(p("empty"), ""))
    assert.are.equal("", await(fs.read_file(p("empty"))))
  end)

  it("replace the contents of an existing file", function()
    await(fs.write_file(p("a"), "a long first version"))
    await(fs.write_file(p("a"), "short"))
    assert.are.equal("short", await(fs.read_file(p("a"))))
  end)

  it("handle several MB", function()
    local chunk = ("0123456789abcdef"):rep(4096)
    local big = chunk:rep(80) .. "end" -- 5 MiB and a bit
    await(fs.write_file(p("big"), big))
    local back = await(fs.read_file(p("big")))
    assert.are.equal(#big, #back)
    assert.is_true(back == big)
  end)

  it("read files whose size stat does not know (/proc)", function()
    assert.matches("^%d+", await(fs.read_file("/proc/self/stat")))
  end)

  it("atomic writes leave no temporary file behind", function()
    await(fs.write_file(p("cfg"), "old"))
    await(fs.write_file(p("cfg"), "new", { atomic = true }))
    assert.are.equal("new", await(fs.read_file(p("cfg"))))
    local names = {}
    for _, e in ipairs(await(fs.scandir(root))) do names[#names + 1] = e.name end
    assert.are.same({ "cfg" }, names)
  end)

  it("a failed atomic write keeps the old file and removes its temporary", function()
    await(fs.mkdir(p("d")))
    await(fs.write_file(p("d/f"), "x"))
    -- renaming a file over a non-empty directory fails
    local e = oserror(fs.write_file(p("d"), "new", { atomic = true }))
    assert.are.equal("rename", e.syscall)
    assert.are.equal("directory", await(fs.stat(p("d"))).type)
    assert.are.equal(1, #await(fs.scandir(root)))
  end)

  it("raise OSError ENOENT naming the file", function()
    local e = oserror(fs.read_file(p("missing")))
    assert.are.equal("ENOENT", e.errno)
    assert.are.equal("open", e.syscall)
    assert.are.equal(p("missing"), e.filename)
    assert.are.equal("OSError", e.type)
    assert.matches("missing", e.message, 1, true)
    assert.are.equal("ENOENT", oserror(fs.write_file(p("no/such/dir"), "x")).errno)
  end)

  it("raise EISDIR for a directory", function()
    assert.are.equal("EISDIR", oserror(fs.read_file(root)).errno)
    assert.are.equal("EISDIR", oserror(fs.write_file(root, "x")).errno)
  end)

  it("raise EACCES without permission", function()
    await(fs.write_file(p("locked"), "secret"))
    os.execute("chmod 000 '" .. p("locked") .. "'")
    local ok, err = pcall(await, fs.read_file(p("locked")))
    if ok then return end -- running as root: permissions do not apply
    assert.are.equal("EACCES", err.errno)
  end)

  it("check their arguments when called", function()
    assert.has_error(function() fs.read_file(nil) end, "fs.read_file: expected a path string, got nil")
    assert.has_error(function() fs.write_file(p("x"), {}) end)
  end)

  it("return awaitables that run concurrently", function()
    local aws = {}
    for i = 1, 20 do aws[i] = fs.write_file(p("f" .. i), ("x"):rep(i)) end
    await(asyncio.gather(table.unpack(aws)))
    for i = 1, 20 do aws[i] = fs.read_file(p("f" .. i)) end
    local got = { await(asyncio.gather(table.unpack(aws))) }
    for i = 1, 20 do assert.are.equal(i, #got[i]) end
  end)
end)

describe("fs.open and files", function()
  it("reads by count, by line and to the end, as io does", function()
    await(fs.write_file(p("t"), "one\ntwo\nthree"))
    local f = await(fs.open(p("t")))
    assert.are.equal("one", await(f:read("l")))
    assert.are.equal("two\n", await(f:read("L")))
    assert.are.equal("th", await(f:read(2)))
    assert.are.equal("ree", await(f:read("a")))
    assert.is_nil(await(f:read("l")))
    assert.is_nil(await(f:read(1)))
    assert.are.equal("", await(f:read("a")))
    assert.are.equal("", await(f:read(0)))
    await(f:close())
  end)

  it("lines() iterates over the lines, in a task too", function()
    await(fs.write_file(p("t"), "a\nbb\n\nlast"))
    local f <close> = await(fs.open(p("t")))
    local got = {}
    for line in f:lines() do got[#got + 1] = line end
    assert.are.same({ "a", "bb", "", "last" }, got)
    await(asyncio.create_task(function()
      await(f:seek("set"))
      got = {}
      for line in f:lines("L") do got[#got + 1] = line end
    end))
    assert.are.same({ "a\n", "bb\n", "\n", "last" }, got)
  end)

  it("read() with no format reads everything left; long reads are not cut", function()
    local big = ("z"):rep(300000)
    await(fs.write_file(p("t"), "ab" .. big))
    local f = await(fs.open(p("t"), "rb"))
    assert.are.equal("ab", await(f:read(2)))
    assert.are.equal(big, await(f:read()))
    await(f:close())
    f = await(fs.open(p("t")))
    assert.are.equal(#big + 2, #await(f:read(10 * #big)))
    await(f:close())
  end)

  it("writes strings and numbers in order and returns the file", function()
    local f = await(fs.open(p("w"), "w"))
    assert.are.equal(f, await(f:write("a", 1, "b", 2.5)))
    await(f:write("\n"))
    await(f:close())
    assert.are.equal("a1b2.5\n", await(fs.read_file(p("w"))))
  end)

  it("seeks like io: set, cur, end; returns the position", function()
    await(fs.write_file(p("s"), "0123456789"))
    local f = await(fs.open(p("s"), "r+"))
    assert.are.equal(0, await(f:seek()))
    assert.are.equal(4, await(f:seek("set", 4)))
    assert.are.equal("45", await(f:read(2)))
    assert.are.equal(6, await(f:seek("cur")))
    assert.are.equal(3, await(f:seek("cur", -3)))
    assert.are.equal(8, await(f:seek("end", -2)))
    await(f:write("XY"))
    assert.are.equal(10, await(f:seek()))
    assert.are.equal(0, await(f:seek("set")))
    assert.are.equal("01234567XY", await(f:read()))
    local e = oserror(f:seek("set", -1))
    assert.are.equal("EINVAL", e.errno)
    assert.has_error(function() await(f:seek("middle")) end)
    await(f:close())
  end)

  it("modes: w truncates, a appends, x refuses an existing file, w+ reads back", function()
    await(fs.write_file(p("m"), "hello"))
    local f = await(fs.open(p("m"), "a"))
    await(f:write(" world"))
    await(f:close())
    assert.are.equal("hello world", await(fs.read_file(p("m"))))
    assert.are.equal("EEXIST", oserror(fs.open(p("m"), "x")).errno)
    f = await(fs.open(p("m"), "w+"))
    assert.are.equal("", await(f:read()))
    await(f:write("new"))
    await(f:seek("set"))
    assert.are.equal("new", await(f:read()))
    await(f:close())
    f = await(fs.open(p("fresh"), "x"))
    await(f:close())
    assert.are.equal(0, await(fs.stat(p("fresh"))).size)
    assert.has_error(function() await(fs.open(p("m"), "q")) end)
  end)

  it("a read-only file refuses writes with EBADF", function()
    await(fs.write_file(p("ro"), "x"))
    local f = await(fs.open(p("ro")))
    assert.are.equal("EBADF", oserror(f:write("y")).errno)
    await(f:close())
  end)

  it("close twice is harmless; a closed file refuses use", function()
    local f = await(fs.open(p("c"), "w"))
    assert.is_false(f:closed())
    await(f:close())
    await(f:close())
    assert.is_true(f:closed())
    assert.matches("closed", tostring(f))
    assert.has_error(function() await(f:read()) end, "attempt to use a closed file")
    assert.has_error(function() await(f:write("x")) end, "attempt to use a closed file")
  end)

  it("<close> closes the file at the end of the scope, in a task too", function()
    local kept
    do
      local f <close> = await(fs.open(p("c"), "w"))
      kept = f
      await(f:write("x"))
    end
    assert.is_true(kept:closed())
    await(asyncio.create_task(function()
      local ok = pcall(function()
        local f <close> = await(fs.open(p("c")))
        kept = f
        error("boom")
      end)
      assert.is_false(ok)
    end))
    assert.is_true(kept:closed())
  end)

  it("a file collected while open is closed, at top level and inside the loop", function()
    await(fs.write_file(p("g"), "x"))
    local before = open_fds()
    for _ = 1, 10 do assert.is_not_nil(await(fs.open(p("g")))) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, open_fds())
    await(asyncio.create_task(function()
      for _ = 1, 10 do assert.is_not_nil(await(fs.open(p("g")))) end
      collectgarbage()
      collectgarbage()
      await(asyncio.sleep(0.05)) -- the closes run on the thread pool
    end))
    assert.are.equal(before, open_fds())
  end)

  it("cancelling a task while it opens or reads leaks no descriptor", function()
    await(fs.write_file(p("g"), ("x"):rep(100000)))
    local before = open_fds()
    for i = 1, 20 do
      local t = asyncio.create_task(function() return await(fs.read_file(p("g"))) end)
      for _ = 1, i % 4 do await(asyncio.sleep(0)) end
      t:cancel()
      pcall(await, t)
    end
    collectgarbage()
    collectgarbage()
    await(asyncio.sleep(0.05))
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, open_fds())
  end)

  it("an open that completes after its task was cancelled closes what it opened", function()
    local fifo = p("fifo")
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local before = open_fds()
    collectgarbage("stop") -- the file must be closed by the open's end, not by a collection
    local t = asyncio.create_task(fs.open(fifo))
    await(asyncio.sleep(0.05))
    t:cancel()
    assert.is_false(pcall(await, t))
    local w = assert(io.open(fifo, "w")) -- the open, blocked on the thread pool, completes
    w:close()
    local n
    for _ = 1, 250 * support.SLOWDOWN do
      n = #await(fs.scandir("/proc/self/fd"))
      if n == before then break end
      await(asyncio.sleep(0.02))
    end
    collectgarbage("restart")
    assert.are.equal(before, n)
  end)

  it("stat of an open file", function()
    await(fs.write_file(p("st"), "12345"))
    local f <close> = await(fs.open(p("st")))
    local st = await(f:stat())
    assert.are.equal(5, st.size)
    assert.are.equal("file", st.type)
    await(f:sync())
  end)
end)

describe("fs.stat and fs.lstat", function()
  it("give size, mode, type and times", function()
    await(fs.write_file(p("f"), "abc"))
    os.execute("chmod 640 '" .. p("f") .. "'")
    local st = await(fs.stat(p("f")))
    assert.are.equal(3, st.size)
    assert.are.equal("file", st.type)
    assert.are.equal(tonumber("640", 8), st.mode & tonumber("777", 8))
    assert.is_true(math.abs(st.mtime - os.time()) < 5)
    assert.is_number(st.atime)
    assert.is_number(st.ctime)
    assert.is_true(st.nlink >= 1)
    assert.are.equal("directory", await(fs.stat(root)).type)
    assert.are.equal("char", await(fs.stat("/dev/null")).type)
  end)

  it("stat follows links, lstat does not", function()
    await(fs.write_file(p("target"), "abc"))
    os.execute("ln -s target '" .. p("link") .. "'")
    assert.are.equal("file", await(fs.stat(p("link"))).type)
    assert.are.equal("link", await(fs.lstat(p("link"))).type)
  end)

  it("raise ENOENT and ENOTDIR", function()
    local e = oserror(fs.stat(p("nope")))
    assert.are.equal("ENOENT", e.errno)
    assert.are.equal("stat", e.syscall)
    await(fs.write_file(p("file"), ""))
    assert.are.equal("ENOTDIR", oserror(fs.stat(p("file/x"))).errno)
    assert.are.equal("lstat", oserror(fs.lstat(p("nope"))).syscall)
  end)
end)

describe("directories", function()
  it("mkdir, rmdir and their errors", function()
    await(fs.mkdir(p("d")))
    assert.are.equal("directory", await(fs.stat(p("d"))).type)
    local e = oserror(fs.mkdir(p("d")))
    assert.are.equal("EEXIST", e.errno)
    assert.are.equal("mkdir", e.syscall)
    assert.are.equal("ENOENT", oserror(fs.mkdir(p("a/b"))).errno)
    await(fs.write_file(p("d/f"), ""))
    assert.are.equal("ENOTEMPTY", oserror(fs.rmdir(p("d"))).errno)
    await(fs.unlink(p("d/f")))
    await(fs.rmdir(p("d")))
    assert.are.equal("ENOENT", oserror(fs.rmdir(p("d"))).errno)
    await(fs.write_file(p("f"), ""))
    assert.are.equal("ENOTDIR", oserror(fs.rmdir(p("f"))).errno)
  end)

  it("mkdir takes a mode", function()
    await(fs.mkdir(p("private"), tonumber("700", 8)))
    assert.are.equal(tonumber("700", 8), await(fs.stat(p("private"))).mode & tonumber("777", 8))
  end)

  it("scandir lists names and types sorted by name", function()
    await(fs.write_file(p("b"), ""))
    await(fs.write_file(p("a"), ""))
    await(fs.mkdir(p("c")))
    os.execute("ln -s a '" .. p("d") .. "'")
    assert.are.same({
      { name = "a", type = "file" }, { name = "b", type = "file" },
      { name = "c", type = "directory" }, { name = "d", type = "link" },
    }, await(fs.scandir(root)))
    assert.are.same({}, await(fs.scandir(p("c"))))
  end)

  it("scandir raises ENOENT and ENOTDIR", function()
    local e = oserror(fs.scandir(p("none")))
    assert.are.equal("ENOENT", e.errno)
    assert.are.equal("scandir", e.syscall)
    await(fs.write_file(p("f"), ""))
    assert.are.equal("ENOTDIR", oserror(fs.scandir(p("f"))).errno)
  end)
end)

describe("fs.rename and fs.unlink", function()
  it("rename moves and replaces", function()
    await(fs.write_file(p("a"), "A"))
    await(fs.write_file(p("b"), "B"))
    await(fs.rename(p("a"), p("b")))
    assert.are.equal("A", await(fs.read_file(p("b"))))
    assert.are.equal("ENOENT", oserror(fs.stat(p("a"))).errno)
  end)

  it("rename errors name both paths", function()
    local e = oserror(fs.rename(p("none"), p("other")))
    assert.are.equal("ENOENT", e.errno)
    assert.are.equal("rename", e.syscall)
    assert.are.equal(p("none"), e.filename)
    assert.are.equal(p("other"), e.filename2)
    assert.has_error(function() fs.rename(p("a"), nil) end)
  end)

  it("unlink removes a file; not a directory, not twice", function()
    await(fs.write_file(p("u"), ""))
    await(fs.unlink(p("u")))
    local e = oserror(fs.unlink(p("u")))
    assert.are.equal("ENOENT", e.errno)
    assert.are.equal("unlink", e.syscall)
    await(fs.mkdir(p("dir")))
    local err = oserror(fs.unlink(p("dir"))).errno
    assert.is_true(err == "EISDIR" or err == "EPERM", err)
  end)
end)

describe("file requests and the end of the program", function()
  local run = support.run_with_held_pool

  it("a call cancelled while queued ends with its task; nothing is left behind", function()
    local out, status = run([[
      local stat = asyncio.create_task(asyncio.fs.stat("/"))
      await(asyncio.sleep(0.05))
      stat:cancel()
      local ok, err = pcall(await, stat)
      print("stat", ok, asyncio.CancelledError:is(err))
      release()
      await(await(held):close())
      print("done")
    ]])
    assert.are.equal("stat\tfalse\ttrue\ndone\n", out)
    assert.are.equal(0, status)
  end)

  it("a close cancelled while queued, its request collected, still closes the file", function()
    local a, b = os.tmpname(), os.tmpname()
    os.remove(a)
    os.remove(b)
    assert(os.execute(("mkfifo '%s' '%s'"):format(a, b)))
    local out, status = support.run_alua_checked(([[
      local fs = asyncio.fs
      local a, b = %q, %q
      local function release(fifo) os.execute(("(: > '%%s') &"):format(fifo)) end
      local function is_open(path) -- by this process
        local pid = io.open("/proc/self/stat"):read("n")
        local ls = io.popen("ls -l /proc/" .. pid .. "/fd")
        local listing = ls:read("a")
        ls:close()
        return listing:find(path, 1, true) ~= nil
      end
      local opening = asyncio.create_task(fs.open(a))
      release(a)
      local f = await(opening)
      local held = asyncio.create_task(fs.open(b)) -- the pool's one thread, until b opens
      await(asyncio.sleep(0.05))
      local closing = asyncio.create_task(f:close())
      await(asyncio.sleep(0.05))
      closing:cancel()
      print(pcall(await, closing))
      closing = nil
      collectgarbage()
      collectgarbage()
      release(b)
      await(await(held):close())
      for _ = 1, 100 do
        if not is_open(a) then break end
        await(asyncio.sleep(0.05))
      end
      print("still open:", is_open(a))
    ]]):format(a, b), "UV_THREADPOOL_SIZE=1")
    os.remove(a)
    os.remove(b)
    assert.matches("^false\t.*CancelledError.*\nstill open:\tfalse\n$", out)
    assert.are.equal(0, status)
  end)

  it("the state closes with a call queued and an open running: no leak, the file closed", function()
    local out, status = run([[
      local stat = asyncio.create_task(asyncio.fs.stat("/"))
      await(asyncio.sleep(0.05))
      release(0.3)
      print("closing")
      os.exit(0, true)
    ]])
    assert.are.equal("closing\n", out)
    assert.are.equal(0, status)
  end)
end)
