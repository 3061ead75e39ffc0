-- porting_spec.lua — the traps a Python or Node user fell into while porting programs
-- with only the docs (issue 17), each written the way that user wrote it. The numbers
-- are the issue's items; the contract is section 9 of the design's API.md.

local support = require "tests.support"
local raises = support.raises

after_each(function()
  local _, running = support.cancel_leftovers()
  assert.are.equal(0, running, "tasks left running by the spec")
end)

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

  it("require 'cjson' works (Debian's lua-cjson)", function()
    local cjson = require "cjson"
    assert.are.same({ id = 7, tags = { "a", "b" } }, cjson.decode(cjson.encode({ id = 7, tags = { "a", "b" } })))
  end)
end)
