-- subprocess_pipeline.lua — `ls | sort -r | head -n 3` with alua tasks as the pipes
-- between the processes, then a few commands run at once and their results collected.
local asyncio = require "asyncio"
local fs, PIPE = asyncio.fs, asyncio.PIPE

-- Copies a reader into a writer until the end, then closes the writer. A reader that
-- stops early (head) closes its stdin: the copy ends there, as SIGPIPE ends a shell's.
local pump = async(function(reader, writer)
  while true do
    local chunk = await(reader:read(65536))
    if chunk == "" then break end
    local ok, err = pcall(function()
      writer:write(chunk)
      await(writer:drain())
    end)
    if not ok then
      if not asyncio.BrokenPipeError:is(err) then error(err, 0) end
      break
    end
  end
  writer:close()
end)

-- Runs the commands (lists of words) as a pipeline; returns the last one's output and
-- every exit status.
local pipeline = async(function(commands)
  local procs = {}
  for i, words in ipairs(commands) do
    local opts = { stdin = i > 1 and PIPE or nil, stdout = PIPE }
    words[#words + 1] = opts
    procs[i] = await(asyncio.create_subprocess_exec(table.unpack(words)))
  end
  local pumps = {}
  for i = 1, #procs - 1 do
    pumps[i] = asyncio.create_task(pump(procs[i].stdout, procs[i + 1].stdin))
  end
  local output = await(procs[#procs].stdout:read())
  await(asyncio.gather(table.unpack(pumps)))
  local statuses = {}
  for i, p in ipairs(procs) do statuses[i] = await(p:wait()) end
  return output, statuses
end)

local main = async(function()
  -- a directory to list, made with asyncio.fs
  local dir = os.tmpname()
  os.remove(dir)
  await(fs.mkdir(dir))
  local names = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf" }
  for _, name in ipairs(names) do await(fs.write_file(dir .. "/" .. name, name)) end

  local output, statuses = await(pipeline {
    { "ls", dir }, { "sort", "-r" }, { "head", "-n", "3" },
  })
  io.write("ls | sort -r | head -n 3:\n", output)
  print("exit statuses: " .. table.concat(statuses, " "))

  for _, name in ipairs(names) do await(fs.unlink(dir .. "/" .. name)) end
  await(fs.rmdir(dir))

  -- several commands at once; results in the order asked
  local commands = {
    { "echo", "hello from echo" },
    { "sh", "-c", "sleep 0.05; echo slow but listed second" },
    { "sh", "-c", "echo to stderr >&2; exit 3" },
    { "printf", "%s-%s\\n", "a", "b" },
  }
  local runs = {}
  for i, words in ipairs(commands) do
    local args = { table.unpack(words) }
    args[#args + 1] = { stdout = PIPE, stderr = PIPE }
    runs[i] = asyncio.create_task(function()
      local p = await(asyncio.create_subprocess_exec(table.unpack(args)))
      local out, err = await(p:communicate())
      return { out = out, err = err, status = p.returncode }
    end)
  end
  local function show(s) return '"' .. s:gsub("\n", "\\n") .. '"' end
  for i, r in ipairs { await(asyncio.gather(table.unpack(runs))) } do
    print(("%d. %s: status %d, stdout %s, stderr %s"):format(i, commands[i][1], r.status,
      show(r.out), show(r.err)))
  end
end)

asyncio.run(main)
