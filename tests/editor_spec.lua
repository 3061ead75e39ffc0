-- editor_spec.lua — the LuaLS definition files (editor/luals/) against the reference
-- (docs/api*.md) and against the module itself: every documented name has a
-- definition, no definition names something undocumented or missing, and every public
-- name of the module and of its objects is defined.

local names = dofile("tools/luals_names.lua")
local DEF_FILES = {"editor/luals/alua.lua", "editor/luals/asyncio.lua", "editor/luals/asyncio_socket.lua",
  "editor/luals/asyncio_http.lua"}
local defs = names(DEF_FILES)

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- the reference pages: docs/api.md and the docs/api-*.md it links to
local function doc_texts()
  local texts = {}
  local ls = assert(io.popen("ls docs/api*.md"))
  for path in ls:lines() do texts[path] = read(path) end
  ls:close()
  return texts
end

-- inline code spans (`...`) and fenced blocks of a page
local function code_of(text)
  local spans, fenced = {}, {}
  local prose = text:gsub("\n```[^\n]*\n(.-)\n```", function(body)
    fenced[#fenced + 1] = body
    return "\n"
  end)
  for span in prose:gmatch("`([^`\n]+)`") do spans[#spans + 1] = span end
  return spans, fenced
end

-- which class a receiver name in the reference's tables stands for ("reader:read(n)")
local RECEIVERS = {
  f = {"Future", "Task"}, fut = {"Future"}, future = {"Future"}, task = {"Task"},
  loop = {"Loop"}, handle = {"Handle"}, t = {"Timeout"}, tg = {"TaskGroup"},
  lock = {"Lock"}, ev = {"Event"}, c = {"Condition"}, cond = {"Condition"},
  sem = {"Semaphore"}, s = {"Semaphore", "Server"}, b = {"Barrier"}, barrier = {"Barrier"},
  q = {"Queue"}, pq = {"Queue"}, reader = {"StreamReader"}, writer = {"StreamWriter"},
  stdin = {"StreamWriter"}, server = {"Server"}, sock = {"DatagramSocket"},
  p = {"Process"}, proc = {"Process"}, file = {"File"}, var = {"ContextVar"},
  worker = {"Worker"}, w = {"Worker"}, parent = {"Channel"},
}

local function has_method(class, m)
  local c = defs.classes[class]
  if not c then return false end
  if c.methods[m] then return true end
  return class == "Task" and defs.classes.Future.methods[m] ~= nil -- a Task is a Future
end

local function method_anywhere(m)
  for _, c in pairs(defs.classes) do
    if c.methods[m] or c.fields[m] then return true end
  end
  return false
end

local function defined(dotted) return defs.fields[dotted] ~= nil or defs.globals[dotted] ~= nil end

describe("the LuaLS definition files", function()
  it("are Lua that loads, each starting with ---@meta", function()
    for _, path in ipairs(DEF_FILES) do
      assert.is_truthy(read(path):match("^%-%-%-@meta"), path)
      assert.is_function(loadfile(path), path)
    end
  end)

  it("define every asyncio name the reference mentions", function()
    local missing = {}
    for path, text in pairs(doc_texts()) do
      local spans, fenced = code_of(text)
      local function scan(code)
        -- asyncio.a.b...: the chain of fields must be defined (file names aside)
        for chain in code:gmatch("asyncio%.[%a_][%w_.]*") do
          chain = chain:gsub("%.$", "")
          if not chain:match("%.so$") and not chain:match("%.lua$") and not chain:match("%.md$")
              and not defined(chain) then
            missing[#missing + 1] = path .. ": " .. chain
          end
        end
        for m in code:gmatch("fs%.([%a_][%w_]*)%s*%(") do
          if not defined("asyncio.fs." .. m) then missing[#missing + 1] = path .. ": fs." .. m end
        end
      end
      for _, s in ipairs(spans) do scan(s) end
      for _, s in ipairs(fenced) do scan(s) end
    end
    assert.are.same({}, missing)
  end)

  it("define every method the reference's tables and text name, on its class", function()
    local missing = {}
    for path, text in pairs(doc_texts()) do
      local spans = code_of(text)
      for _, span in ipairs(spans) do
        span = span:gsub("function%s+[%w_.:]+", "") -- a definition, not a call
        for recv, m in span:gmatch("([%a_][%w_]*):([%a_][%w_]*)%s*%(") do
          local classes = RECEIVERS[recv]
          local ok = false
          if recv:match("Error$") or recv == "ExceptionGroup" then
            ok = has_method("ErrorClass", m)
          elseif classes then
            for _, c in ipairs(classes) do ok = ok or has_method(c, m) end
          else
            ok = method_anywhere(m) -- a receiver this spec does not know: some class has it
          end
          if not ok then missing[#missing + 1] = ("%s: %s:%s"):format(path, recv, m) end
        end
      end
      -- rows of constructor tables: "| `asyncio.Lock()` | `acquire()` → ...; `release()` |"
      for row in text:gmatch("\n| `asyncio%.[%a_][%w_]*%(.-\n") do
        for span in row:gmatch("`([^`]+)`") do
          local m = span:match("^([%a_][%w_]*)%(")
          if m and not method_anywhere(m) and not defined("asyncio." .. m) then
            missing[#missing + 1] = path .. ": " .. m .. "()"
          end
        end
      end
    end
    assert.are.same({}, missing)
  end)

  it("name nothing the reference does not mention", function()
    local words = {}
    for _, text in pairs(doc_texts()) do
      local spans, fenced = code_of(text)
      for _, list in ipairs({spans, fenced}) do
        for _, code in ipairs(list) do
          for w in code:gmatch("[%a_][%w_]*") do words[w] = true end
        end
      end
    end
    local undocumented = {}
    local function check(name, where)
      local last = name:match("([%a_][%w_]*)$")
      if not words[last] then undocumented[#undocumented + 1] = where .. ": " .. name end
    end
    for name, where in pairs(defs.globals) do check(name, where) end
    for name, where in pairs(defs.fields) do check(name, where) end
    for cname, c in pairs(defs.classes) do
      for m, where in pairs(c.methods) do check(cname .. ":" .. m, where) end
      for fld, where in pairs(c.fields) do check(cname .. "." .. fld, where) end
    end
    table.sort(undocumented)
    assert.are.same({}, undocumented)
  end)
end)

-- the public names of an object: its own fields and those of its __index tables
local function public_names(obj)
  local seen = {}
  local function add(t)
    for k, v in pairs(t) do
      if type(k) == "string" and not k:match("^_") and type(v) == "function" then seen[k] = true end
    end
  end
  if type(obj) == "table" then add(obj) end
  local mt = debug.getmetatable(obj)
  while mt and type(mt.__index) == "table" do
    add(mt.__index)
    mt = debug.getmetatable(mt.__index)
  end
  return seen
end

describe("the LuaLS definitions and the module", function()
  it("define every public field of asyncio, and only fields it has", function()
    local undefined, absent = {}, {}
    for k in pairs(asyncio) do
      if type(k) == "string" and not k:match("^_") and not defined("asyncio." .. k) then
        undefined[#undefined + 1] = k
      end
    end
    for dotted in pairs(defs.fields) do
      local v = _G
      for part in dotted:gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
      -- asyncio.parent is set only inside a worker
      if v == nil and dotted ~= "asyncio.parent" then absent[#absent + 1] = dotted end
    end
    table.sort(undefined)
    table.sort(absent)
    assert.are.same({}, undefined, "public but not defined")
    assert.are.same({}, absent, "defined but not in the module")
  end)

  it("define the methods of each object, and only methods it has", function()
    local server = await(asyncio.start_server(function(_, w) w:close() end, "127.0.0.1", 0))
    local reader, writer = await(asyncio.open_connection(server:sockname()))
    local udp = await(asyncio.open_udp({local_addr = {"127.0.0.1", 0}}))
    local proc = await(asyncio.create_subprocess_exec("true"))
    local file = await(asyncio.fs.open("tools/luals_names.lua"))
    -- (scopes are made inside a task, and not entered)
    local timeout, group = await(asyncio.create_task(function()
      return asyncio.timeout(nil), asyncio.TaskGroup()
    end))
    local objects = {
      Future = asyncio.Future(), Task = asyncio.create_task(function() end),
      Loop = asyncio.get_running_loop(), Handle = asyncio.get_running_loop():call_soon(print),
      Timeout = timeout, TaskGroup = group,
      Lock = asyncio.Lock(), Event = asyncio.Event(), Condition = asyncio.Condition(),
      Semaphore = asyncio.BoundedSemaphore(), Barrier = asyncio.Barrier(2),
      Queue = asyncio.PriorityQueue(), StreamReader = reader, StreamWriter = writer,
      Server = server, DatagramSocket = udp, Process = proc, File = file,
      ErrorClass = asyncio.TimeoutError, ContextVar = asyncio.ContextVar("v"),
    }
    local wrong = {}
    for cname, obj in pairs(objects) do
      local c = assert(defs.classes[cname], "no class " .. cname)
      for m in pairs(c.methods) do
        if type(obj[m]) ~= "function" then wrong[#wrong + 1] = cname .. ":" .. m .. " is not a method" end
      end
      for m in pairs(public_names(obj)) do
        if not has_method(cname, m) and not c.fields[m] and cname ~= "ErrorClass" then
          wrong[#wrong + 1] = cname .. ":" .. m .. " is not defined"
        end
      end
    end
    await(objects.Task)
    await(proc:wait())
    await(file:close())
    writer:close()
    udp:close()
    server:close()
    await(server:wait_closed())
    table.sort(wrong)
    assert.are.same({}, wrong)
  end)
end)
