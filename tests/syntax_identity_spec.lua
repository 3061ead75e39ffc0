-- syntax_identity_spec.lua — plain Lua stays byte for byte what it was: the keyword
-- transform over every .lua file of Debian's Lua 5.4 libraries (busted, luassert,
-- penlight, ...), as they are and behind a first line that names `await`, which
-- forces the full scan instead of the shortcut for text without the words.

local ROOT = "/usr/share/lua/5.4"

local function lua_files()
  local p = assert(io.popen("find -L " .. ROOT .. " -name '*.lua' -type f | sort"))
  local files = {}
  for name in p:lines() do files[#files + 1] = name end
  p:close()
  return files
end

local function read(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("the transform on plain Lua", function()
  local files = lua_files()

  it("finds the library files", function()
    assert.is_true(#files >= 50, "only " .. #files .. " files under " .. ROOT)
  end)

  it("returns every file unchanged", function()
    local changed, bytes = {}, 0
    for _, name in ipairs(files) do
      local src = read(name)
      bytes = bytes + #src
      for _, text in ipairs { src, "local await = nil\n" .. src } do
        local out, err = alua.syntax.translate(text, "@" .. name)
        if out ~= text then changed[#changed + 1] = name .. ": " .. tostring(err) end
      end
    end
    assert.are.same({}, changed)
    assert.is_true(bytes > 500000, "only " .. bytes .. " bytes read")
  end)
end)
