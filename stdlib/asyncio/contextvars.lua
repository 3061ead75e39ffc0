-- contextvars.lua — ContextVar: values each task sees as they were in the code that
-- created it when it was created (Python's contextvars), e.g. a request id for logs.
-- A context is an immutable table {[var] = value} kept by the task (async/core/context.c);
-- set copies it, so the tasks that share it never see each other's changes.
local core = ...
local arg_error = core._arg_error -- bad arguments, reported at the user's line

local context_get, context_set, context_owner = core._context_get, core._context_set,
  core._context_owner
local NIL = {} -- a variable set to nil (distinct from one never set)

local ContextVar = {}
ContextVar.__index = ContextVar
ContextVar.__name = "ContextVar"

local Token = {}
Token.__index = Token
Token.__name = "ContextVar.Token"

local function check_self(self, method)
  if getmetatable(self) ~= ContextVar then
    core._self_error("ContextVar", "var", method)
  end
end

local function with(ctx, var, value)
  local copy = {}
  if ctx then for k, v in next, ctx do copy[k] = v end end
  copy[var] = value
  return copy
end

-- var:get([default]) -> the value in the running task's context; else default, else
-- the variable's default; else an error (Python's LookupError).
function ContextVar.get(self, ...)
  check_self(self, "get")
  local ctx = context_get()
  local v = ctx and ctx[self]
  if v ~= nil then
    if v == NIL then return nil end
    return v
  end
  if select("#", ...) > 0 then return (...) end
  if self._has_default then return self._default end
  arg_error(("ContextVar:get: '%s' has no value here and no default"):format(self.name))
end

-- var:set(value) -> a token for var:reset(token)
function ContextVar.set(self, value)
  check_self(self, "set")
  local ctx = context_get()
  local old = ctx and ctx[self]
  context_set(with(ctx, self, value == nil and NIL or value))
  return setmetatable({ var = self, old_value = old, _owner = context_owner() }, Token)
end

-- var:reset(token): the variable's value before the set that made token
function ContextVar.reset(self, token)
  check_self(self, "reset")
  if getmetatable(token) ~= Token then
    arg_error("ContextVar:reset: expected a token from var:set(), got " .. type(token))
  end
  if token.var ~= self then arg_error("ContextVar:reset: the token was made by another ContextVar") end
  if token._used then arg_error("ContextVar:reset: the token was already used") end
  if token._owner ~= context_owner() then
    arg_error("ContextVar:reset: the token was made in another task's context")
  end
  token._used = true
  context_set(with(context_get(), self, token.old_value))
end

function ContextVar.__tostring(self)
  return ("<ContextVar name='%s'>"):format(self.name)
end

function Token.__tostring(self)
  return ("<ContextVar.Token var='%s'%s>"):format(self.var.name, self._used and " used" or "")
end

-- asyncio.ContextVar(name [, default])
local function new(name, ...)
  if type(name) ~= "string" then
    arg_error("ContextVar: the name must be a string, got " .. type(name))
  end
  local has_default = select("#", ...) > 0
  return setmetatable({ name = name, _has_default = has_default, _default = (...) }, ContextVar)
end

return { ContextVar = new }
