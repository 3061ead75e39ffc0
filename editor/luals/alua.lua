---@meta
-- alua's globals for the Lua language server (LuaLS): `async`, `await` and `alua`.
-- The `asyncio` module is in asyncio.lua beside this file. Add this directory to
-- `Lua.workspace.library` (installed as PREFIX/share/alua/luals); keyword syntax
-- (`async function`, `await x`) is read through `alua --translate`.

---Wraps `fn` so that calling it returns a coroutine object that has not started; the
---body runs when the object is awaited or wrapped in a task. `async` of an async
---function returns it unchanged.
---@generic F: function
---@param fn F
---@param name? string names it in messages
---@return F
function async(fn, name) end

---Returns all the results of `x` (a coroutine object, Task, Future or operation), or
---raises its error. Inside a task it suspends the task; at a script's top level it
---runs the loop until `x` is done.
---@async
---@param x asyncio.Awaitable
---@return any ...
function await(x) end

---alua's own table (in `alua` and hosts using `alua_openlibs`).
alua = {}

alua.syntax = {}

---The keyword transform alone: the plain-Lua text of `src`, every token on its line.
---@param src string
---@param chunkname? string
---@return string|nil translation
---@return string? message `"chunkname:line: message"` when `src` cannot be translated
function alua.syntax.translate(src, chunkname) end
