---@meta asyncio
-- The `asyncio` module for the Lua language server (LuaLS): every public function,
-- class and constant with the types of its arguments and results, as docs/api.md
-- describes them (tests/editor_spec.lua checks the two against each other and against
-- the module itself). Durations are seconds; times are on `loop:time()`'s clock.

---@alias asyncio.Awaitable asyncio.Coroutine|asyncio.Future|asyncio.Task|asyncio.Operation
---@alias asyncio.Signal string|integer a name (`"SIGTERM"`, `"TERM"`) or a number

---What calling an async function returns: runs once, when awaited or wrapped in a task.
---@class asyncio.Coroutine

---What a stream's `read*` and `drain` return: awaitable once, like a coroutine object.
---@class asyncio.Operation

---@class asyncio
asyncio = {}

asyncio.async = async
asyncio.await = await

-- ---- running ----------------------------------------------------------------------

---Runs `main` as the main task until it is done, cancels what is left, returns main's
---results. Raises inside a running loop.
---@param main asyncio.Awaitable|function
---@param ... any arguments of a function `main`
---@return any ...
function asyncio.run(main, ...) end

---Top-level `await` as a function: runs the loop until `aw` is done.
---@param aw asyncio.Awaitable
---@return any ...
function asyncio.run_until_complete(aw) end

---The loop of this Lua state (also where it is not running).
---@return asyncio.Loop
function asyncio.get_running_loop() end

---The same as `get_running_loop`.
---@return asyncio.Loop
function asyncio.get_event_loop() end

---Suspends the awaiting task for `delay` seconds; the awaited results are `...`.
---@param delay number
---@param ... any
---@return asyncio.Coroutine
function asyncio.sleep(delay, ...) end

---The task running the calling code, or nothing outside any task.
---@return asyncio.Task|nil
function asyncio.current_task() end

---The tasks not done yet, oldest first.
---@return asyncio.Task[]
function asyncio.all_tasks() end

---@param x any
---@return boolean
function asyncio.iscoroutine(x) end

---@param f any
---@return boolean
function asyncio.iscoroutinefunction(f) end

---True for an asyncio error and for the wrapper gather's `return_exceptions` puts in
---place of a failed child's user error (`v.error`: the value as raised).
---@param v any
---@return boolean
function asyncio.is_error(v) end

-- ---- tasks and futures ------------------------------------------------------------

---Schedules `coro` (or `fn(...)`) as a task starting at the next loop iteration.
---@param coro asyncio.Awaitable|function
---@param ... any a name for a coroutine object; the arguments of a function
---@return asyncio.Task
function asyncio.create_task(coro, ...) end

---A Future or Task as is; a coroutine object wrapped in a new Task.
---@param aw asyncio.Awaitable
---@return asyncio.Future|asyncio.Task
function asyncio.ensure_future(aw) end

---A result that will exist later.
---@return asyncio.Future
function asyncio.Future() end

---@class asyncio.Future
local Future = {}

---@return boolean
function Future:done() end

---@return boolean
function Future:cancelled() end

---All its results; raises its error, `CancelledError`, or `InvalidStateError` while pending.
---@return any ...
function Future:result() end

---Its error value, or nil if it succeeded.
---@return any
function Future:exception() end

---@param msg? string the CancelledError's message
---@return boolean pending `true` if it was pending (it is now cancelled)
function Future:cancel(msg) end

---`fn(f)` runs from the loop once `f` is done.
---@param fn fun(f: asyncio.Future)
function Future:add_done_callback(fn) end

---@param fn function
---@return integer removed how many callbacks `fn` were removed
function Future:remove_done_callback(fn) end

---@return string
function Future:get_name() end

---@param name string
function Future:set_name(name) end

---@return asyncio.Loop
function Future:get_loop() end

---Completes it with these results (Future only).
---@param ... any
function Future:set_result(...) end

---Completes it with an error, any non-nil value (Future only).
---@param err any
function Future:set_exception(err) end

---A Future running a body in its own Lua thread.
---@class asyncio.Task: asyncio.Future
local Task = {}

---@return integer requests cancellation requests not undone by `uncancel`
function Task:cancelling() end

---@return integer left
function Task:uncancel() end

---A frame of a task's await stack.
---@class asyncio.Frame
---@field source string the chunk, as in messages (`"server.lua"`)
---@field line integer|nil
---@field name string|nil `"local 'handle'"`, `"main chunk"`, `"function <f.lua:3>"`

---The frames of the task's await stack, oldest first; empty unless it is suspended.
---@param limit? integer keep only the newest frames
---@return asyncio.Frame[]
function Task:get_stack(limit) end

---Prints the await stack, most recent call last.
---@param limit? integer
---@param file? file* io.stderr by default
function Task:print_stack(limit, file) end

---Every pending task: name, state, what it waits on, its await stack, who waits on it.
---@param file? file* io.stderr by default
function asyncio.print_tasks(file) end

-- ---- context variables ----------------------------------------------------------

---A value each task sees as it was where the task was created (Python's contextvars).
---@param name string
---@param default? any
---@return asyncio.ContextVar
function asyncio.ContextVar(name, default) end

---@class asyncio.ContextVar
---@field name string
local ContextVar = {}

---The value in the running task's context; else `default`, else the variable's default.
---@param default? any
---@return any
function ContextVar:get(default) end

---Sets it in the running task's context only.
---@param value any
---@return asyncio.ContextVarToken token
function ContextVar:set(value) end

---The value from before the `set` that made `token`.
---@param token asyncio.ContextVarToken
function ContextVar:reset(token) end

---What `ContextVar:set` returns, for `reset`.
---@class asyncio.ContextVarToken

-- ---- combinators ------------------------------------------------------------------

---Runs the awaitables concurrently: one value (the first result) per awaitable, in
---order. A last plain table is options `{return_exceptions = true}`; a plain table
---first is the list of awaitables.
---@param ... asyncio.Awaitable|asyncio.Awaitable[]|{return_exceptions: boolean?}
---@return asyncio.Future
function asyncio.gather(...) end

---@class asyncio.WaitOptions
---@field timeout? number
---@field return_when? "FIRST_COMPLETED"|"FIRST_EXCEPTION"|"ALL_COMPLETED"

---Waits until `return_when` is met or `timeout` passed; the awaited results are the
---lists `done, pending`.
---@param list asyncio.Awaitable[]
---@param opts? asyncio.WaitOptions
---@return asyncio.Coroutine
function asyncio.wait(list, opts) end

---Awaits `aw`, cancelling it and raising `TimeoutError` after `timeout` seconds.
---@param aw asyncio.Awaitable
---@param timeout number|nil
---@return asyncio.Coroutine
function asyncio.wait_for(aw, timeout) end

---For a generic `for`: each value is an awaitable giving the next result to finish.
---@param list asyncio.Awaitable[]
---@param opts? {timeout: number?}
---@return fun(): asyncio.Awaitable
function asyncio.as_completed(list, opts) end

---An awaitable for `aw`'s outcome that cancelling does not pass through.
---@param aw asyncio.Awaitable
---@return asyncio.Future
function asyncio.shield(aw) end

asyncio.FIRST_COMPLETED = "FIRST_COMPLETED"
asyncio.FIRST_EXCEPTION = "FIRST_EXCEPTION"
asyncio.ALL_COMPLETED = "ALL_COMPLETED"

-- ---- the loop ---------------------------------------------------------------------

---@class asyncio.Loop
---@field slow_callback_duration number debug mode reports steps longer than this (0.1 s)
local Loop = {}

---Debug mode: slow steps, where coroutines, futures and resources were made, unclosed
---resources; SIGQUIT prints every task.
---@param enabled boolean
function Loop:set_debug(enabled) end

---@return boolean
function Loop:get_debug() end

---@return number seconds the loop's monotonic clock
function Loop:time() end

---@return boolean
function Loop:is_running() end

---@param fn function
---@param ... any
---@return asyncio.Handle
function Loop:call_soon(fn, ...) end

---@param delay number
---@param fn function
---@param ... any
---@return asyncio.Handle
function Loop:call_later(delay, fn, ...) end

---@param when number
---@param fn function
---@param ... any
---@return asyncio.Handle
function Loop:call_at(when, fn, ...) end

---@param sig asyncio.Signal
---@param fn function
---@param ... any
function Loop:add_signal_handler(sig, fn, ...) end

---@param sig asyncio.Signal
---@return boolean removed
function Loop:remove_signal_handler(sig) end

---A scheduled callback.
---@class asyncio.Handle
local Handle = {}

function Handle:cancel() end

---@return boolean
function Handle:cancelled() end

---@return number|nil when a timer handle's time, nil for call_soon
function Handle:when() end

-- ---- timeouts and task groups -----------------------------------------------------

---A scope for a `<close>` variable inside a task: at the deadline the task is
---cancelled and leaving the scope raises `TimeoutError`. `nil`: no deadline.
---@param delay number|nil
---@return asyncio.Timeout
function asyncio.timeout(delay) end

---@param when number|nil
---@return asyncio.Timeout
function asyncio.timeout_at(when) end

---Calls `fn(...)` inside a timeout scope; the awaited results are fn's.
---@param delay number|nil
---@param fn function
---@param ... any
---@return asyncio.Coroutine
function asyncio.with_timeout(delay, fn, ...) end

---@class asyncio.Timeout
local Timeout = {}

---@return number|nil
function Timeout:when() end

---@param when number|nil
function Timeout:reschedule(when) end

---@return boolean
function Timeout:expired() end

---A scope for a `<close>` variable inside a task: closing waits for every child.
---@return asyncio.TaskGroup
function asyncio.TaskGroup() end

---Calls `fn(tg)` inside a TaskGroup scope; the awaited results are fn's.
---@param fn fun(tg: asyncio.TaskGroup): ...
---@return asyncio.Coroutine
function asyncio.task_group(fn) end

---@class asyncio.TaskGroup
local TaskGroup = {}

---@param coro asyncio.Awaitable|function
---@param name? string
---@return asyncio.Task
function TaskGroup:create_task(coro, name) end

-- ---- synchronisation --------------------------------------------------------------

---@return asyncio.Lock
function asyncio.Lock() end

---@class asyncio.Lock
local Lock = {}

---Awaited: the lock itself, whose `__close` releases it.
---@return asyncio.Coroutine
function Lock:acquire() end

function Lock:release() end

---@return boolean
function Lock:locked() end

---@return asyncio.Event
function asyncio.Event() end

---@class asyncio.Event
local Event = {}

---Awaited: `true` once set.
---@return asyncio.Coroutine
function Event:wait() end

function Event:set() end

function Event:clear() end

---@return boolean
function Event:is_set() end

---@param lock? asyncio.Lock
---@return asyncio.Condition
function asyncio.Condition(lock) end

---@class asyncio.Condition
local Condition = {}

---@return asyncio.Coroutine
function Condition:acquire() end

function Condition:release() end

---@return boolean
function Condition:locked() end

---Awaited: `true` once notified.
---@return asyncio.Coroutine
function Condition:wait() end

---Awaited: pred's value once it is true.
---@param pred fun(): any
---@return asyncio.Coroutine
function Condition:wait_for(pred) end

---@param n? integer
function Condition:notify(n) end

function Condition:notify_all() end

---@param value? integer
---@return asyncio.Semaphore
function asyncio.Semaphore(value) end

---@param value? integer
---@return asyncio.Semaphore
function asyncio.BoundedSemaphore(value) end

---@class asyncio.Semaphore
local Semaphore = {}

---Awaited: the semaphore itself, whose `__close` releases it.
---@return asyncio.Coroutine
function Semaphore:acquire() end

function Semaphore:release() end

---@return boolean
function Semaphore:locked() end

---@param parties integer
---@return asyncio.Barrier
function asyncio.Barrier(parties) end

---@class asyncio.Barrier
---@field parties integer
local Barrier = {}

---Awaited: the arrival index, 0 .. parties - 1.
---@return asyncio.Coroutine
function Barrier:wait() end

---@return asyncio.Coroutine
function Barrier:reset() end

---@return asyncio.Coroutine
function Barrier:abort() end

---@return integer
function Barrier:n_waiting() end

---@return boolean
function Barrier:broken() end

-- ---- queues -----------------------------------------------------------------------

---@param maxsize? integer <= 0: unbounded
---@return asyncio.Queue
function asyncio.Queue(maxsize) end

---@param maxsize? integer
---@return asyncio.Queue
function asyncio.LifoQueue(maxsize) end

---@param maxsize? integer
---@return asyncio.Queue
function asyncio.PriorityQueue(maxsize) end

---@class asyncio.Queue
---@field maxsize integer
local Queue = {}

---Awaited once there is room.
---@param item any
---@return asyncio.Coroutine
function Queue:put(item) end

---Awaited: the item.
---@return asyncio.Coroutine
function Queue:get() end

---@param item any
function Queue:put_nowait(item) end

---@return any item
function Queue:get_nowait() end

---@return integer
function Queue:qsize() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

function Queue:task_done() end

---Awaited once every item put has been marked done.
---@return asyncio.Coroutine
function Queue:join() end

---@param immediate? boolean
function Queue:shutdown(immediate) end

-- ---- streams ----------------------------------------------------------------------

---@class asyncio.SSLOptions
---@field cafile? string
---@field certfile? string
---@field keyfile? string
---@field password? string
---@field verify? boolean
---@field server_hostname? string
---@field suppress_ragged_eofs? boolean
---@field on_handshake_error? function

---@class asyncio.StreamOptions
---@field limit? integer
---@field nodelay? boolean
---@field keepalive? boolean|number
---@field family? "inet"|"inet6"
---@field ssl? boolean|asyncio.SSLOptions
---@field ssl_handshake_timeout? number

---@class asyncio.ConnectOptions: asyncio.StreamOptions
---@field timeout? number seconds for the whole connection (TLS handshake included): TimeoutError

---@class asyncio.ServerOptions: asyncio.StreamOptions
---@field backlog? integer
---@field reuse_port? boolean
---@field start_serving? boolean

---Awaited: `reader, writer`.
---@param host string
---@param port integer|string
---@param opts? asyncio.ConnectOptions
---@return asyncio.Coroutine
function asyncio.open_connection(host, port, opts) end

---Awaited: a Server; `cb(reader, writer)` runs in a task per connection.
---@param cb fun(reader: asyncio.StreamReader, writer: asyncio.StreamWriter)
---@param host string|string[]|nil
---@param port integer|string
---@param opts? asyncio.ServerOptions
---@return asyncio.Coroutine
function asyncio.start_server(cb, host, port, opts) end

---Awaited: `reader, writer`.
---@param path string
---@param opts? asyncio.ConnectOptions
---@return asyncio.Coroutine
function asyncio.open_unix_connection(path, opts) end

---Awaited: a Server.
---@param cb fun(reader: asyncio.StreamReader, writer: asyncio.StreamWriter)
---@param path string
---@param opts? asyncio.ServerOptions
---@return asyncio.Coroutine
function asyncio.start_unix_server(cb, path, opts) end

---@class asyncio.Server
local Server = {}

---@return string host_or_path
---@return integer? port
function Server:sockname() end

---@return {[1]: string, [2]: integer}[]
function Server:socknames() end

---@return boolean
function Server:is_serving() end

function Server:close() end

---@return asyncio.Coroutine
function Server:wait_closed() end

---@return asyncio.Coroutine
function Server:start_serving() end

---@return asyncio.Coroutine
function Server:serve_forever() end

---The methods of stream readers, as a table.
---@class asyncio.StreamReader
asyncio.StreamReader = {}

---Awaited: up to `n` bytes; `n` omitted or -1: everything until the end.
---@param n? integer
---@return asyncio.Operation
function asyncio.StreamReader:read(n) end

---Awaited: a line with its `"\n"`; `""` at the end.
---@return asyncio.Operation
function asyncio.StreamReader:readline() end

---@param sep? string
---@return asyncio.Operation
function asyncio.StreamReader:readuntil(sep) end

---@param n integer
---@return asyncio.Operation
function asyncio.StreamReader:readexactly(n) end

---Each line without its end of line, until the end of the stream.
---@return fun(): string|nil
function asyncio.StreamReader:lines() end

---@return boolean
function asyncio.StreamReader:at_eof() end

---The methods of stream writers, as a table.
---@class asyncio.StreamWriter
asyncio.StreamWriter = {}

---@param data string
function asyncio.StreamWriter:write(data) end

---@param list string[]
function asyncio.StreamWriter:writelines(list) end

---Awaited while the write buffer is above its high-water mark.
---@return asyncio.Operation|asyncio.Future
function asyncio.StreamWriter:drain() end

function asyncio.StreamWriter:write_eof() end

---@return boolean
function asyncio.StreamWriter:can_write_eof() end

function asyncio.StreamWriter:close() end

---Closes at once, discarding what is queued (a TCP reset).
function asyncio.StreamWriter:abort() end

---@return boolean
function asyncio.StreamWriter:is_closing() end

---@return asyncio.Coroutine
function asyncio.StreamWriter:wait_closed() end

---`"peername"`, `"sockname"` → host, port; `"ssl"` → a table; `"peercert"` → PEM.
---@param name string
---@param default? any
---@return any ...
function asyncio.StreamWriter:get_extra_info(name, default) end

---@param high? integer
---@param low? integer
function asyncio.StreamWriter:set_write_buffer_limits(high, low) end

---@return integer
function asyncio.StreamWriter:get_write_buffer_size() end

-- ---- UDP and DNS ------------------------------------------------------------------

---@class asyncio.UDPOptions
---@field local_addr? {[1]: string, [2]: integer}
---@field remote_addr? {[1]: string, [2]: integer}
---@field reuse_port? boolean
---@field allow_broadcast? boolean
---@field family? "inet"|"inet6"

---Awaited: a DatagramSocket.
---@param opts asyncio.UDPOptions
---@return asyncio.Coroutine
function asyncio.open_udp(opts) end

---@class asyncio.DatagramSocket
local DatagramSocket = {}

---@param data string
---@param host? string
---@param port? integer
function DatagramSocket:sendto(data, host, port) end

---Awaited: `data, host, port`.
---@return asyncio.Coroutine
function DatagramSocket:recvfrom() end

---@return string host
---@return integer port
function DatagramSocket:sockname() end

---@return string host
---@return integer port
function DatagramSocket:peername() end

function DatagramSocket:close() end

---@return boolean
function DatagramSocket:is_closing() end

---@return asyncio.Coroutine
function DatagramSocket:wait_closed() end

---Awaited: a list of `{family =, address =, port =}`.
---@param host string
---@param port integer|string|nil
---@param opts? {family: ("inet"|"inet6")?, type: ("stream"|"dgram")?, passive: boolean?}
---@return asyncio.Coroutine
function asyncio.getaddrinfo(host, port, opts) end

-- ---- subprocesses and signals -----------------------------------------------------

---@class asyncio.ProcessOptions
---@field stdin? integer|asyncio.StreamReader
---@field stdout? integer
---@field stderr? integer
---@field cwd? string
---@field env? table<string, string>
---@field limit? integer
---@field pass_fds? integer[]
---@field close_fds? boolean

---Awaited: a Process. A last plain table is options.
---@param prog string
---@param ... string|number|asyncio.ProcessOptions
---@return asyncio.Coroutine
function asyncio.create_subprocess_exec(prog, ...) end

---Awaited: a Process running `/bin/sh -c cmd`.
---@param cmd string
---@param opts? asyncio.ProcessOptions
---@return asyncio.Coroutine
function asyncio.create_subprocess_shell(cmd, opts) end

asyncio.PIPE = -1
asyncio.STDOUT = -2
asyncio.DEVNULL = -3

---@class asyncio.Process
---@field pid integer
---@field returncode integer|nil nil while it runs; minus the signal that killed it
---@field stdin asyncio.StreamWriter|nil
---@field stdout asyncio.StreamReader|nil
---@field stderr asyncio.StreamReader|nil
local Process = {}

---Awaited: `returncode`.
---@return asyncio.Coroutine
function Process:wait() end

---Awaited: `stdout_data, stderr_data`.
---@param input? string
---@return asyncio.Coroutine
function Process:communicate(input) end

---@param sig asyncio.Signal
function Process:send_signal(sig) end

function Process:terminate() end

function Process:kill() end

---`PIPE`, `STDOUT`, `DEVNULL`, `Process` and the two functions, as Python's.
asyncio.subprocess = {
  PIPE = asyncio.PIPE,
  STDOUT = asyncio.STDOUT,
  DEVNULL = asyncio.DEVNULL,
  Process = Process,
  create_subprocess_exec = asyncio.create_subprocess_exec,
  create_subprocess_shell = asyncio.create_subprocess_shell,
}

---`fn(...)` runs as a loop callback each time `sig` arrives.
---@param sig asyncio.Signal
---@param fn function
---@param ... any
function asyncio.add_signal_handler(sig, fn, ...) end

---@param sig asyncio.Signal
---@return boolean removed
function asyncio.remove_signal_handler(sig) end

-- ---- workers and threads ------------------------------------------------------------

---The CPUs this process may run on.
---@return integer
function asyncio.cpu_count() end

---Awaited: a Worker, once the script at `path` has loaded on its own thread; `...` are
---copied as the script's `...`.
---@param path string
---@param ... any
---@return asyncio.Operation
function asyncio.start_worker(path, ...) end

---A script running on another thread (asyncio.start_worker).
---@class asyncio.Worker
local Worker = {}

---Queues a copy of `v` for `asyncio.parent:recv()` in the worker.
---@param v any
function Worker:send(v) end

---Awaited: the next message from the worker, nil once it ended and all were read.
---@return asyncio.Operation
function Worker:recv() end

---Awaited: copies of the results of the worker's main chunk; raises its error.
---@return asyncio.Operation
function Worker:wait() end

---Cancels the worker's tasks and interrupts its running Lua; its loop then stops.
function Worker:terminate() end

---Inside a worker: the channel to its creator (nil in the main thread).
---@class asyncio.Channel
local Channel = {}

---Queues a copy of `v` for `worker:recv()` in the creator.
---@param v any
function Channel:send(v) end

---Awaited: the next message from the creator, nil once it terminated or dropped the worker.
---@return asyncio.Operation
function Channel:recv() end

---@type asyncio.Channel|nil
asyncio.parent = nil

---Awaited: `fn(...)`'s results, computed on a pool of up to cpu_count() threads. `fn` has
---no upvalue but `_ENV`, or is `"module:function"`.
---@param fn function|string
---@param ... any
---@return asyncio.Coroutine
function asyncio.to_thread(fn, ...) end

-- ---- files ------------------------------------------------------------------------

---@class asyncio.Stat
---@field size integer
---@field mode integer
---@field type "file"|"directory"|"link"|string
---@field mtime number
---@field atime number
---@field ctime number
---@field ino integer
---@field dev integer
---@field nlink integer
---@field uid integer
---@field gid integer

---File operations on libuv's thread pool; each returns an awaitable.
asyncio.fs = {}

---Awaited: the contents.
---@param path string
---@return asyncio.Coroutine
function asyncio.fs.read_file(path) end

---@param path string
---@param data string
---@param opts? {atomic: boolean?}
---@return asyncio.Coroutine
function asyncio.fs.write_file(path, data, opts) end

---Awaited: a File.
---@param path string
---@param mode? string as io.open, plus "x"
---@return asyncio.Coroutine
function asyncio.fs.open(path, mode) end

---Awaited: an asyncio.Stat.
---@param path string
---@return asyncio.Coroutine
function asyncio.fs.stat(path) end

---@param path string
---@return asyncio.Coroutine
function asyncio.fs.lstat(path) end

---@param path string
---@param mode? integer
---@return asyncio.Coroutine
function asyncio.fs.mkdir(path, mode) end

---@param path string
---@return asyncio.Coroutine
function asyncio.fs.rmdir(path) end

---@param path string
---@return asyncio.Coroutine
function asyncio.fs.unlink(path) end

---@param old string
---@param new string
---@return asyncio.Coroutine
function asyncio.fs.rename(old, new) end

---Awaited: a list of `{name =, type =}` sorted by name.
---@param path string
---@return asyncio.Coroutine
function asyncio.fs.scandir(path) end

---@class asyncio.File
local File = {}

---@param fmt? integer|"a"|"l"|"L"
---@return asyncio.Coroutine
function File:read(fmt) end

---@param fmt? "l"|"L"
---@return fun(): string|nil
function File:lines(fmt) end

---@param ... string|number
---@return asyncio.Coroutine
function File:write(...) end

---@param whence? "set"|"cur"|"end"
---@param offset? integer
---@return asyncio.Coroutine
function File:seek(whence, offset) end

---@return asyncio.Coroutine
function File:close() end

---@return boolean
function File:closed() end

---@return asyncio.Coroutine
function File:stat() end

---@return asyncio.Coroutine
function File:sync() end

-- ---- errors -----------------------------------------------------------------------

---An instance of one of asyncio's error classes.
---@class asyncio.Error
---@field type string the class name
---@field message string|nil
---@field traceback string|nil
---@field errno string|nil OSError and its kinds: `"ENOENT"`, `"ECONNREFUSED"`, ...
---@field syscall string|nil
---@field filename string|nil
---@field partial string|nil IncompleteReadError
---@field expected integer|nil IncompleteReadError
---@field consumed integer|nil LimitOverrunError
---@field errors any[]|nil ExceptionGroup

---An error class: `Class(message [, fields])` makes one, `Class:is(v)` tests one.
---@class asyncio.ErrorClass
---@overload fun(message?: string, fields?: table): asyncio.Error
local ErrorClass = {}

---@param v any
---@return boolean
function ErrorClass:is(v) end

---@type asyncio.ErrorClass
asyncio.CancelledError = nil
---@type asyncio.ErrorClass
asyncio.TimeoutError = nil
---@type asyncio.ErrorClass
asyncio.InvalidStateError = nil
---@type asyncio.ErrorClass
asyncio.QueueEmpty = nil
---@type asyncio.ErrorClass
asyncio.QueueFull = nil
---@type asyncio.ErrorClass
asyncio.QueueShutDown = nil
---@type asyncio.ErrorClass
asyncio.IncompleteReadError = nil
---@type asyncio.ErrorClass
asyncio.LimitOverrunError = nil
---@type asyncio.ErrorClass
asyncio.OSError = nil
---@type asyncio.ErrorClass
asyncio.ConnectionError = nil
---@type asyncio.ErrorClass
asyncio.BrokenPipeError = nil
---@type asyncio.ErrorClass
asyncio.SSLError = nil
---@type asyncio.ErrorClass
asyncio.ExceptionGroup = nil

return asyncio
