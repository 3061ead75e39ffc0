-- http_fetch_many.lua — fetches many URLs at once with asyncio.http, at most N in flight
-- (a Semaphore is the bound; one http.Client keeps the connections alive between them).
--   alua scripts/examples/http_fetch_many.lua URL...   fetches those, 4 at a time
--   alua scripts/examples/http_fetch_many.lua          fetches 20 pages of its own server
local asyncio = require "asyncio"
local http = require "asyncio.http"

local IN_FLIGHT = 4

local fetch_all = async function(urls)
  local client <close> = http.Client { max_per_host = IN_FLIGHT }
  local sem = asyncio.Semaphore(IN_FLIGHT)
  local active, peak = 0, 0
  local fetch = async function(url)
    local _ <close> = await sem:acquire()
    active = active + 1
    peak = math.max(peak, active)
    local ok, res = pcall(await, client:get(url, { timeout = 10 }))
    local result
    if ok then
      result = { url = url, status = res.status, bytes = #(await res:read()) }
    else
      result = { url = url, error = tostring(res) }
    end
    active = active - 1
    return result
  end
  local tasks = {}
  for i, url in ipairs(urls) do tasks[i] = fetch(url) end
  return { await asyncio.gather(table.unpack(tasks)) }, peak
end

local urls, server = { ... }, nil
if #urls == 0 then
  -- a local server whose pages take 20 ms each
  server = await http.serve(async function(req)
    await asyncio.sleep(0.02)
    return 200, nil, ("page %s\n"):format(req.path):rep(10)
  end, "127.0.0.1", 0)
  local _, port = server:sockname()
  for i = 1, 20 do urls[i] = ("http://127.0.0.1:%d/%d"):format(port, i) end
end

local results, peak = await fetch_all(urls)
for _, r in ipairs(results) do
  if r.error then
    print(r.url, "failed:", r.error)
  else
    print(server and r.url:match("/%d+$") or r.url, r.status, r.bytes .. " bytes")
  end
end
print(("%d URLs, at most %d in flight"):format(#urls, peak))
if server then server:close() end
