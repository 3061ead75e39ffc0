-- to_thread_module.lua — a module for workers_spec: to_thread("tests.to_thread_module:count")
-- shows that each pool thread requires it once and keeps it.
_G.to_thread_module_loads = (_G.to_thread_module_loads or 0) + 1
local calls = 0
return {
  count = function()
    calls = calls + 1
    return calls, _G.to_thread_module_loads
  end,
}
