-- producer_consumer.lua — N producers and M consumers share a bounded Queue: put waits
-- while the queue is full, get while it is empty; join() waits until every item is
-- processed, and shutdown() then stops the consumers.
local asyncio = require "asyncio"

local PRODUCERS, CONSUMERS, ITEMS, MAXSIZE = 3, 2, 5, 2

local queue = asyncio.Queue(MAXSIZE)
local received = {}   -- producer id -> the item numbers taken, in the order taken
local handled = {}    -- consumer id -> how many items it processed
local largest = 0     -- the longest the queue ever got

local producer = async(function(id)
  for n = 1, ITEMS do
    await(queue:put({ producer = id, n = n })) -- suspends while the queue is full
    largest = math.max(largest, queue:qsize())
  end
end)

local consumer = async(function(id)
  handled[id] = 0
  while true do
    local ok, item = pcall(await, queue:get()) -- suspends while the queue is empty
    if not ok then
      if asyncio.QueueShutDown:is(item) then return end
      error(item, 0)
    end
    local list = received[item.producer] or {}
    received[item.producer] = list
    list[#list + 1] = item.n
    await(asyncio.sleep(0.001)) -- "processing"
    handled[id] = handled[id] + 1
    queue:task_done()
  end
end)

local main = async(function()
  local consumers = {}
  for id = 1, CONSUMERS do consumers[id] = asyncio.create_task(consumer(id)) end
  -- every producer runs in one task group: leaving it means all of them are done
  await(asyncio.task_group(function(tg)
    for id = 1, PRODUCERS do tg:create_task(producer(id)) end
  end))
  await(queue:join())
  queue:shutdown()
  await(asyncio.gather(table.unpack(consumers)))

  local total = 0
  for id = 1, PRODUCERS do
    local list = received[id]
    local in_order = true
    for i = 2, #list do in_order = in_order and list[i] > list[i - 1] end
    print(("producer %d: %d items, %s"):format(id, #list, in_order and "in order" or "OUT OF ORDER"))
    total = total + #list
  end
  local busy = 0
  for id = 1, CONSUMERS do
    if handled[id] > 0 then busy = busy + 1 end
  end
  print(("%d items processed by %d of %d consumers; the queue never held more than %d"):format(
    total, busy, CONSUMERS, largest))
  local stopped = 0
  for _, t in ipairs(consumers) do
    if t:done() then stopped = stopped + 1 end
  end
  print(("after shutdown: %d consumers stopped, put_nowait refused: %s"):format(stopped,
    tostring(not pcall(queue.put_nowait, queue, "late"))))
end)

asyncio.run(main())
