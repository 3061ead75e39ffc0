-- signals.lua — signal handlers on the loop (C: async/os/signal.c).
local core = ...
local M = {} -- what this part exports (asyncio.lua adds it to the module)

-- add_signal_handler(sig, fn, ...): fn(...) runs as a loop callback each time the
-- signal ("SIGTERM", "SIGUSR1", ...) arrives; it replaces an earlier handler of sig.
-- Handlers do not keep a finished script alive, but a top-level await waits for them.
M.add_signal_handler = core.add_signal_handler

-- remove_signal_handler(sig) -> true if a handler was removed
M.remove_signal_handler = core.remove_signal_handler

return M
