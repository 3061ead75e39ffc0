-- luacheck_std.lua — writes the luacheck standard `alua` (a luacheck config defining
-- stds.alua) from the LuaLS definition files, so the two cannot disagree:
--   alua tools/luacheck_std.lua editor/luals/*.lua > build/share/luacheckrc
-- Every global and asyncio field they define is known to luacheck; a field that holds
-- a table of functions (asyncio.fs) lists them, so a typo there is reported too.
local names = dofile((arg[0]:gsub("[^/]*$", "")) .. "luals_names.lua")
local paths = {...}
table.sort(paths)
local defs = names(paths)

-- the tree of dotted names: tree.asyncio.fs.read_file = {}
local tree = {}
for _, group in ipairs({defs.globals, defs.fields}) do
  for name in pairs(group) do
    local node = tree
    for part in name:gmatch("[^.]+") do
      node[part] = node[part] or {}
      node = node[part]
    end
  end
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- a leaf that is a class (StreamReader, the error classes) keeps any field open
local function emit(node, indent, out)
  for _, k in ipairs(sorted_keys(node)) do
    local child = node[k]
    if next(child) then
      out[#out + 1] = ("%s%s = {fields = {"):format(indent, k)
      emit(child, indent .. "  ", out)
      out[#out + 1] = indent .. "}},"
    elseif defs.classes[k] or k:match("^%u") then
      out[#out + 1] = ("%s%s = {other_fields = true},"):format(indent, k)
    else
      out[#out + 1] = ("%s%s = {},"):format(indent, k)
    end
  end
end

local out = {
  "-- luacheck config defining the standard `alua`: alua's globals (async, await, alua,",
  "-- asyncio and its fields). Generated from alua's LuaLS definitions; use it as",
  "--   alua --translate f.lua | luacheck --config PREFIX/share/alua/luacheckrc --std +alua -",
  "-- or copy the stds.alua line into a project's .luacheckrc.",
  "stds.alua = {read_globals = {",
}
emit(tree, "  ", out)
out[#out + 1] = "}}"
io.write(table.concat(out, "\n"), "\n")
