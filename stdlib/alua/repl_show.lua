-- repl_show.lua — how the REPL shows a value it printed: a plain table's contents
-- (nested to a depth, cycles marked, long ones cut), as Node's and Python's prompts do,
-- instead of `table: 0x...`. Values with a __tostring (Tasks, errors) and everything
-- that is not a table show as print shows them.

local MAX_DEPTH = 3    -- deeper tables show as {...}
local MAX_ITEMS = 100  -- per table; the rest is counted
local WIDTH = 72       -- a table whose parts fit on one line is shown on one line

local show

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function show_key(k, seen, depth)
  if is_identifier(k) then return k end
  return "[" .. show(k, seen, depth, true) .. "]"
end

local function show_table(t, seen, depth, indent)
  if seen[t] then return "<cycle>" end
  if depth >= MAX_DEPTH then return next(t) == nil and "{}" or "{...}" end
  seen[t] = true
  local parts, n = {}, #t
  local shown = 0
  for i = 1, n do
    if shown >= MAX_ITEMS then break end
    parts[#parts + 1] = show(rawget(t, i), seen, depth + 1, true, indent .. "  ")
    shown = shown + 1
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  local total = n + #keys
  for _, k in ipairs(keys) do
    if shown >= MAX_ITEMS then break end
    parts[#parts + 1] = show_key(k, seen, depth + 1) .. " = "
      .. show(rawget(t, k), seen, depth + 1, true, indent .. "  ")
    shown = shown + 1
  end
  if shown < total then parts[#parts + 1] = ("... (%d more)"):format(total - shown) end
  seen[t] = nil
  if #parts == 0 then return "{}" end
  local line = "{" .. table.concat(parts, ", ") .. "}"
  if #line + #indent <= WIDTH and not line:find("\n", 1, true) then return line end
  local inner = indent .. "  "
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

-- nested: inside a table, where strings are quoted so that "1" and 1 differ
function show(v, seen, depth, nested, indent)
  local tv = type(v)
  if tv == "string" then return nested and ("%q"):format(v):gsub("\\\n", "\\n") or v end
  if tv ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if mt ~= nil and (type(mt) ~= "table" or rawget(mt, "__tostring") or rawget(mt, "__name")) then
    return tostring(v)
  end
  return show_table(v, seen, depth, indent or "")
end

-- repl_show(...) -> one string per value, for print
return function(...)
  local out = table.pack(...)
  for i = 1, out.n do out[i] = show(out[i], {}, 0, false) end
  return table.unpack(out, 1, out.n)
end
