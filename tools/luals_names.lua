-- luals_names.lua — what the LuaLS definition files (editor/luals/*.lua) define, read
-- from their text: the names of module functions, fields and classes with their
-- methods and fields. Used to generate the luacheck standard (tools/luacheck_std.lua)
-- and by tests/editor_spec.lua. The files are written in one regular style (a
-- `---@class` line, then `local Var = {}` or `mod.Var = {}`, then `function Var:m(`),
-- which this reader relies on; the spec fails if a file strays from it.
--   local defs = dofile("tools/luals_names.lua")({"editor/luals/asyncio.lua", ...})
--   defs.globals["await"], defs.fields["asyncio.fs.read_file"], defs.classes.Lock.methods.acquire

local function short(class) return (class:gsub("^asyncio%.", "")) end

return function(paths)
  local defs = {globals = {}, fields = {}, classes = {}}
  local function class(name)
    name = short(name)
    defs.classes[name] = defs.classes[name] or {methods = {}, fields = {}}
    return defs.classes[name]
  end
  for _, path in ipairs(paths) do
    local f = assert(io.open(path))
    local pending, vars, table_of = nil, {}, nil
    local n = 0
    for line in f:lines() do
      n = n + 1
      local where = path .. ":" .. n
      if table_of then -- inside `mod.t = {`: one `name = value,` per line
        local k = line:match("^%s+([%a_][%w_]*)%s*=")
        if k then defs.fields[table_of .. "." .. k] = where end
        if line:match("^}") then table_of = nil end
      elseif line:match("^%-%-%-@class%s") then
        pending = class(line:match("^%-%-%-@class%s+([%w_.]+)"))
      elseif line:match("^%-%-%-@field%s") and pending then
        pending.fields[line:match("^%-%-%-@field%s+([%a_][%w_]*)")] = where
      elseif line:match("^local%s+[%a_][%w_]*%s*=") then
        local v = line:match("^local%s+([%a_][%w_]*)")
        if pending then vars[v] = pending end
        pending = nil
      elseif line:match("^function%s") then
        local owner, sep, name = line:match("^function%s+([%w_.]-)([.:]?)([%a_][%w_]*)%s*%(")
        assert(name, where .. ": unreadable function line")
        if sep == ":" then
          local c = vars[owner] or assert(defs.classes[short(owner)], where .. ": method of an unknown class")
          c.methods[name] = where
        elseif owner == "" then
          defs.globals[name] = where
        else
          defs.fields[owner .. "." .. name] = where
        end
        pending = nil
      elseif line:match("^[%a_][%w_.]*%s*=") then
        local lhs, rhs = line:match("^([%a_][%w_.]*)%s*=%s*(.-)%s*$")
        if lhs:find(".", 1, true) then defs.fields[lhs] = where else defs.globals[lhs] = where end
        if pending then vars[lhs] = pending end
        if rhs == "{" then table_of = lhs end
        pending = nil
      end
    end
    f:close()
  end
  return defs
end
