-- syntax_gen.lua — writes a large alua program (plain and async code mixed) for bench/syntax_speed.sh.
local target = tonumber(arg[1]) or 8 * 1024 * 1024
local out = {}
local size, i = 0, 0

local function emit(s)
  out[#out + 1] = s
  size = size + #s
end

local templates = {
  [===[
-- Module %d: a request handler with retries.
local M%d = {}

local async function fetch_%d(client, url, opts)
  opts = opts or {}
  local tries, last_err = 0, nil
  while tries < (opts.retries or 3) do
    tries = tries + 1
    local ok, res = pcall(function()
      return await client:get(url, { timeout = opts.timeout or 5.0 })
    end)
    if ok and res.status == 200 then
      return res.body, tries
    elseif ok then
      last_err = string.format("HTTP %%d for %%s", res.status, url)
    else
      last_err = tostring(res)
    end
    await asyncio.sleep(0.05 * 2 ^ tries)
  end
  error("giving up on " .. url .. ": " .. last_err)
end

async function M%d.handle(self, reader, writer)
  local line = await reader:readline()
  if not line then return end
  local method, path = line:match("^(%%u+)%%s+(%%S+)")
  for k, v in pairs(self.routes) do
    if path:find(k, 1, true) then
      local body = await fetch_%d(self.client, v .. path, { retries = 2 })
      writer:write("HTTP/1.0 200 OK\r\n\r\n", body)
      await writer:drain()
      break
    end
  end
  writer:close()
end
]===],
  [===[
--[==[ Plain helpers %d: no keywords here at all, a long comment
with several lines, [[nested brackets]] and quotes " ' to skip. ]==]
local function split_%d(s, sep)
  local parts, pos = {}, 1
  repeat
    local a, b = s:find(sep, pos, true)
    if a then
      parts[#parts + 1] = s:sub(pos, a - 1)
      pos = b + 1
    else
      parts[#parts + 1] = s:sub(pos)
    end
  until not a
  return parts
end

local function sum_%d(t)
  local total = 0
  for _, v in ipairs(t) do total = total + (tonumber(v) or 0) end
  return total, #t, total / math.max(#t, 1), 0x1p-4, 1e10, 3.25
end

local escapes_%d = { "tab\there", 'quote\'s', "nl\\n", [[long
string]], "\65\066\x43\u{44}" }
]===],
  [===[
local Queue%d = {}
Queue%d.__index = Queue%d

function Queue%d.new(maxsize)
  return setmetatable({ items = {}, first = 1, last = 0, maxsize = maxsize or 0 }, Queue%d)
end

async function Queue%d:put(item)
  while self.maxsize > 0 and self.last - self.first + 1 >= self.maxsize do
    await self.not_full:wait()
  end
  self.last = self.last + 1
  self.items[self.last] = item
  self.not_empty:set()
end

async function Queue%d:get()
  while self.last < self.first do await self.not_empty:wait() end
  local item = self.items[self.first]
  self.items[self.first] = nil
  self.first = self.first + 1
  return item
end

local worker_%d = async function(q, n)
  local results = {}
  for i = 1, n do
    results[i] = await q:get()
    if i %% 10 == 0 then await asyncio.sleep(0) end
  end
  return results
end
]===],
}

while size < target do
  i = i + 1
  local t = templates[(i - 1) % #templates + 1]
  emit("do local function module_" .. i .. "()\n" .. t:gsub("%%d", tostring(i)):gsub("%%%%", "%%") .. "end end\n")
end
io.write(table.concat(out))
