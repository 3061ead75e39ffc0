-- crawler.lua — a crawler-style fan-out over a simulated site: every discovered page is
-- fetched in its own task of one TaskGroup, a Semaphore caps the fetches in flight,
-- and a timeout gives up on a page that is too slow.
local asyncio = require "asyncio"

-- (a page gets 1 s: the pages take 10-20 ms, but 0.25 s left too little room under
-- valgrind on a busy machine; /slow takes 5 s)
local MAX_IN_FLIGHT, PAGE_TIMEOUT = 3, 1

-- the "web": each page's links, and how long it takes to answer (seconds)
local site = {
  ["/"] = { links = { "/a", "/b", "/c", "/d" }, delay = 0.01 },
  ["/a"] = { links = { "/a/1", "/a/2", "/" }, delay = 0.01 },
  ["/b"] = { links = { "/b/1", "/a" }, delay = 0.02 },
  ["/c"] = { links = { "/slow", "/c/1" }, delay = 0.01 },
  ["/d"] = { links = {}, delay = 0.01 },
  ["/a/1"] = { links = { "/b/1" }, delay = 0.01 },
  ["/a/2"] = { links = {}, delay = 0.01 },
  ["/b/1"] = { links = { "/missing" }, delay = 0.01 },
  ["/c/1"] = { links = {}, delay = 0.01 },
  ["/slow"] = { links = { "/never-seen" }, delay = 5 },
}

local limit = asyncio.Semaphore(MAX_IN_FLIGHT)
local in_flight, peak, fetches = 0, 0, 0
local outcome = {} -- url -> "ok (n links)", "not found" or "timed out"

-- one request: holds a semaphore unit for as long as it is in flight
local fetch = async(function(url)
  local _ <close> = await(limit:acquire())
  in_flight = in_flight + 1
  peak = math.max(peak, in_flight)
  fetches = fetches + 1
  local ok, links = pcall(await, asyncio.with_timeout(PAGE_TIMEOUT, function()
    local page = site[url]
    await(asyncio.sleep(page and page.delay or 0.005))
    if not page then error("404 " .. url, 0) end
    return page.links
  end))
  in_flight = in_flight - 1
  if ok then return links end
  error(links, 0)
end)

local crawl = async(function(root)
  local seen = { [root] = true }
  await(asyncio.task_group(function(tg)
    local function visit(url)
      local ok, links = pcall(await, fetch(url))
      if not ok then
        outcome[url] = asyncio.TimeoutError:is(links) and "timed out" or "not found"
        return
      end
      outcome[url] = ("ok, %d link(s)"):format(#links)
      for _, link in ipairs(links) do
        if not seen[link] then
          seen[link] = true
          tg:create_task(function() visit(link) end)
        end
      end
    end
    tg:create_task(function() visit(root) end)
  end))
end)

await(crawl("/"))
local urls = {}
for url in pairs(outcome) do urls[#urls + 1] = url end
table.sort(urls)
for _, url in ipairs(urls) do print(("%-9s %s"):format(url, outcome[url])) end
print(("%d fetches, at most %d in flight (limit %d)"):format(fetches, peak, MAX_IN_FLIGHT))
