-- fs.lua — asyncio.fs: files on libuv's thread pool (C primitives: async/os/fs.c).
-- Every call returns an awaitable; failures raise OSError with errno, syscall, filename.
local core, asyncio = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local C = core.fs
local await, async = asyncio.await, asyncio.async
local concat, sort, type, select = table.concat, table.sort, type, select

local fs = {}
M.fs = fs

-- Starts nothing itself: `start` is a C primitive returning (request, future).
local function run(req, fut, ...)
  if req == nil then return end
  await(fut)
  return C.result(req, ...)
end

local function check_path(fname, path)
  if type(path) ~= "string" then
    arg_error(("fs.%s: expected a path string, got %s"):format(fname, type(path)))
  end
end

---------------------------------------------------------------------------------------
-- File objects

local File = {}
C.File.__index = File

local CHUNK = 65536

-- Reads up to n bytes (fewer only at the end of the file); "" when n is 0.
local function read_n(f, n)
  local parts, got = {}, 0
  while got < n do
    local data = run(C.read(f, n - got))
    if #data == 0 then break end
    parts[#parts + 1] = data
    got = got + #data
  end
  return concat(parts)
end

local function read_all(f)
  local parts, size = {}, CHUNK
  while true do
    local data = run(C.read(f, size))
    if #data == 0 then return concat(parts) end
    parts[#parts + 1] = data
    if size < 16 * CHUNK then size = size * 2 end
  end
end

local function read_line(f, keep)
  local start = C.pos(f)
  local parts = {}
  while true do
    local data = run(C.read(f, 4096))
    if #data == 0 then
      if #parts == 0 then return nil end
      return concat(parts)
    end
    local nl = data:find("\n", 1, true)
    if nl then
      parts[#parts + 1] = data:sub(1, keep and nl or nl - 1)
      local line = concat(parts)
      C.pos(f, start + #line + (keep and 0 or 1))
      return line
    end
    parts[#parts + 1] = data
    start = start + #data
  end
end

-- file:read(fmt): fmt is a number of bytes (nil at the end of the file, as io), "a"
-- (everything left; also the default), "l" (a line without its "\n") or "L" (with it).
File.read = async(function(f, fmt)
  if fmt == nil then fmt = "a" end
  if type(fmt) == "number" then
    local data = read_n(f, fmt)
    if #data == 0 and fmt > 0 then return nil end
    return data
  end
  fmt = type(fmt) == "string" and fmt:gsub("^%*", "") or fmt
  if fmt == "a" then return read_all(f) end
  if fmt == "l" then return read_line(f, false) end
  if fmt == "L" then return read_line(f, true) end
  arg_error("file:read: invalid format " .. tostring(fmt) .. ' (expected a number, "a", "l" or "L")')
end, "File.read")

-- file:write(...): strings or numbers, written in order; returns the file.
File.write = async(function(f, ...)
  for i = 1, select("#", ...) do
    local data = select(i, ...)
    if type(data) == "number" then data = tostring(data) end
    if type(data) ~= "string" then
      arg_error("file:write: bad argument #" .. i .. " (string expected, got " .. type(data) .. ")")
    end
    local from = 1
    repeat
      local n = run(C.write(f, data, from))
      from = from + n
    until from > #data
  end
  return f
end, "File.write")

-- file:seek(whence, offset) as io's: whence "set", "cur" (default) or "end"; returns the
-- new position.
File.seek = async(function(f, whence, offset)
  whence, offset = whence or "cur", offset or 0
  if C.closed(f) then arg_error("attempt to use a closed file") end
  if whence == "set" then return C.pos(f, offset) end
  if whence == "cur" then return C.pos(f, C.pos(f) + offset) end
  if whence == "end" then return C.pos(f, run(C.fstat(f)).size + offset) end
  arg_error("file:seek: invalid whence '" .. tostring(whence) .. "' (expected \"set\", \"cur\" or \"end\")")
end, "File.seek")

-- file:lines(fmt): for a generic for (in a task or at the top level), each line without
-- its "\n" ("L": with it), as io's.
function File:lines(fmt)
  local keep = fmt == "L"
  return function() return read_line(self, keep) end
end

File.stat = async(function(f) return run(C.fstat(f)) end, "File.stat")
File.sync = async(function(f) return run(C.fsync(f)) end, "File.sync")

-- file:close(): closing twice does nothing.
File.close = async(function(f) return run(C.close(f)) end, "File.close")

function File:closed() return C.closed(self) end

-- `local f <close> = await fs.open(...)`: closes when the scope ends (waiting for it
-- where it can, in a task or at the top level; in the background inside a callback).
C.File.__close = function(f)
  if C.closed(f) then return end
  if core._loop_is_running() and not asyncio.current_task() then return C.close_nowait(f) end
  run(C.close(f))
end

---------------------------------------------------------------------------------------
-- Functions

local open = async(function(path, mode) return run(C.open(path, mode)) end, "fs.open")

-- fs.open(path, mode): mode as io.open's ("r" default, "w", "a", "x", with "+", "b").
function fs.open(path, mode)
  check_path("open", path)
  if mode ~= nil and type(mode) ~= "string" then arg_error("fs.open: mode must be a string, got " .. type(mode)) end
  return open(path, mode)
end

local read_file = async(function(path)
  local f <close> = run(C.open(path, "r"))
  return read_all(f)
end, "fs.read_file")

-- fs.read_file(path) -> its contents
function fs.read_file(path)
  check_path("read_file", path)
  return read_file(path)
end

local function write_all(f, data)
  local from = 1
  while from <= #data do from = from + run(C.write(f, data, from)) end
end

local write_file = async(function(path, data, atomic)
  if not atomic then
    local f <close> = run(C.open(path, "w"))
    return write_all(f, data)
  end
  -- atomic: readers see the old contents or the new, never a part
  local tmp = ("%s.%08x.tmp"):format(path, math.random(0, 0x7fffffff))
  local ok, err = pcall(function()
    local f <close> = run(C.open(tmp, "x"))
    write_all(f, data)
    run(C.fsync(f))
  end)
  if ok then ok, err = pcall(function() run(C.rename(tmp, path)) end) end
  if not ok then
    pcall(function() run(C.unlink(tmp)) end)
    error(err, 0)
  end
end, "fs.write_file")

-- fs.write_file(path, data, {atomic = true}): creates or replaces the file; atomic
-- writes a temporary file next to it, syncs it and renames it over the path.
function fs.write_file(path, data, opts)
  check_path("write_file", path)
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then
    arg_error("fs.write_file: expected a string of data, got " .. type(data))
  end
  core._check_options("fs.write_file", opts, { atomic = "boolean" })
  return write_file(path, data, opts and opts.atomic)
end

local function simple(name, fn)
  local body = async(function(...) return run(fn(...)) end, "fs." .. name)
  fs[name] = function(path, ...)
    check_path(name, path)
    return body(path, ...)
  end
end

simple("stat", C.stat)    -- -> {size=, mode=, type=, mtime=, atime=, ctime=, ...}
simple("lstat", C.lstat)  -- the same, of a link itself (type "link")
simple("mkdir", C.mkdir)  -- (path [, mode = 0777])
local mkdir = fs.mkdir
function fs.mkdir(path, mode)
  if mode ~= nil and math.tointeger(mode) == nil then
    arg_error("fs.mkdir: mode must be an integer (tonumber(\"755\", 8): Lua has no octal literals) or nil, got " .. core._describe(mode))
  end
  return mkdir(path, mode)
end
simple("rmdir", C.rmdir)
simple("unlink", C.unlink)

local rename = async(function(old, new) return run(C.rename(old, new)) end, "fs.rename")
function fs.rename(old, new)
  check_path("rename", old)
  check_path("rename", new)
  return rename(old, new)
end

local by_name = function(a, b) return a.name < b.name end

local scandir = async(function(path)
  local list = run(C.scandir(path))
  for _, e in ipairs(list) do
    -- some file systems do not say: ask
    if e.type == "unknown" then
      local ok, st = pcall(function() return run(C.lstat(path .. "/" .. e.name)) end)
      if ok then e.type = st.type end
    end
  end
  sort(list, by_name)
  return list
end, "fs.scandir")

-- fs.scandir(path) -> list of {name=, type=} sorted by name ("." and ".." left out)
function fs.scandir(path)
  check_path("scandir", path)
  return scandir(path)
end

core._checked_methods(File, C.File, "File", "file") -- '.' for ':' says so

return M
