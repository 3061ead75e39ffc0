-- on_every_core.lua — a server workload on every core: one worker per CPU, each running
-- bench/alua/NAME.lua on the same port (reuse_port: the kernel spreads the connections).
-- usage: alua on_every_core.lua NAME PORT [HOST]     (NAME: echo_server, http_server)
local asyncio = require "asyncio"
local name, port, host = ...
local dir = arg[0]:match("^(.*)/") or "."
local workers = {}
for i = 1, asyncio.cpu_count() do
  workers[i] = await(asyncio.start_worker(("%s/%s.lua"):format(dir, name), port, host))
end
for _, w in ipairs(workers) do await(w:wait()) end
