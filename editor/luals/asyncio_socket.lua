---@meta asyncio.socket
-- `require "asyncio.socket"` (also `asyncio.socket`) for the Lua language server:
-- LuaSocket 3's API on alua (docs/api-socket.md). Calls that may wait suspend only the
-- calling task; I/O results are LuaSocket's (`nil, "timeout" | "closed" | message, partial`).

---@class asyncio.socket
asyncio.socket = {}

---@alias asyncio.socket.result number|nil

---@return asyncio.socket.tcp
function asyncio.socket.tcp() end

---@return asyncio.socket.tcp
function asyncio.socket.tcp4() end

---@return asyncio.socket.tcp
function asyncio.socket.tcp6() end

---@return asyncio.socket.udp
function asyncio.socket.udp() end

---@return asyncio.socket.udp
function asyncio.socket.udp4() end

---@return asyncio.socket.udp
function asyncio.socket.udp6() end

---A connected client, or `nil, message`.
---@param host string
---@param port integer
---@return asyncio.socket.tcp|nil
---@return string? err
function asyncio.socket.connect(host, port, lhost, lport, family) end

---@return asyncio.socket.tcp|nil
---@return string? err
function asyncio.socket.connect4(host, port, lhost, lport) end

---@return asyncio.socket.tcp|nil
---@return string? err
function asyncio.socket.connect6(host, port, lhost, lport) end

---A listening server, or `nil, message`.
---@param host string `"*"`: every interface
---@param port integer 0: a free port
---@param backlog? integer
---@return asyncio.socket.tcp|nil
---@return string? err
function asyncio.socket.bind(host, port, backlog) end

---The sockets of `recvt` ready to read and of `sendt` ready to write (each list also
---maps a socket to its index); `"timeout"` when none is.
---@param recvt table?
---@param sendt table?
---@param timeout? number
---@return table readable
---@return table writable
---@return string? err
function asyncio.socket.select(recvt, sendt, timeout) end

---Seconds since the epoch, with a fraction.
---@return number
function asyncio.socket.gettime() end

---Suspends the calling task for `s` seconds.
---@param s number
function asyncio.socket.sleep(s) end

---@param f function
---@return function
function asyncio.socket.protect(f) end

---@param finalizer? function
---@return function
function asyncio.socket.newtry(finalizer) end

---@return any ...
function asyncio.socket.try(...) end

---@param d integer
---@return any ...
function asyncio.socket.skip(d, ...) end

---@param t table
---@return function
function asyncio.socket.choose(t) end

---An ltn12 source reading from a socket (`"by-length"`, `"until-closed"`, `"default"`).
---@return table
function asyncio.socket.source(mode, sock, length) end

---An ltn12 sink writing to a socket (`"close-when-done"`, `"keep-open"`, `"default"`).
---@return table
function asyncio.socket.sink(mode, sock) end

---Makes `require "socket"`, `"socket.core"` and `"ssl"` return alua's layers.
---@return asyncio.socket
function asyncio.socket.install() end

asyncio.socket.dns = {}

---@param name string
---@return string|nil ip
---@return table|string info_or_err
function asyncio.socket.dns.toip(name) end

---@param addr string
---@return string|nil name
---@return table|string info_or_err
function asyncio.socket.dns.tohostname(addr) end

---@param name string
---@return table|nil
---@return string? err
function asyncio.socket.dns.getaddrinfo(name) end

---@param addr string
---@return table|nil
---@return string? err
function asyncio.socket.dns.getnameinfo(addr) end

---@return string
function asyncio.socket.dns.gethostname() end

---A TCP socket: `tcp{master}`, `tcp{client}` or `tcp{server}`.
---@class asyncio.socket.tcp
local tcp = {}

---@return number|nil
---@return string? err
function tcp:connect(host, port) end

---@return number|nil
---@return string? err
function tcp:bind(host, port) end

---@return number|nil
function tcp:listen(backlog) end

---@return asyncio.socket.tcp|nil
---@return string? err
function tcp:accept() end

---The index of the last byte sent, or `nil, err, last index sent`.
---@param data string
---@param i? integer
---@param j? integer
---@return number|nil
---@return string? err
---@return number? last
function tcp:send(data, i, j) end

---`"*l"` (default), `"*a"` or a byte count; `nil, err, partial` on failure.
---@param pattern? string|integer
---@param prefix? string
---@return string|nil
---@return string? err
---@return string? partial
function tcp:receive(pattern, prefix) end

---@param t? number nil or negative: no limit
---@param mode? "b"|"t"
function tcp:settimeout(t, mode) end

---@return number block
---@return number total
function tcp:gettimeout() end

function tcp:setoption(name, value) end

function tcp:getoption(name) end

---@return string|nil host
---@return integer|string port
---@return string? family
function tcp:getpeername() end

---@return string|nil host
---@return string port
---@return string? family
function tcp:getsockname() end

---@return string
function tcp:getfamily() end

---@param how? "both"|"send"|"receive"
function tcp:shutdown(how) end

function tcp:close() end

---@return boolean
function tcp:dirty() end

---@return integer
function tcp:getfd() end

---@return number received
---@return number sent
---@return number age
function tcp:getstats() end

function tcp:setstats(received, sent, age) end

---A UDP socket: `udp{unconnected}` or `udp{connected}`.
---@class asyncio.socket.udp
local udp = {}

---@return number|nil bytes
---@return string? err
function udp:sendto(data, host, port) end

---@return number|nil bytes
---@return string? err
function udp:send(data) end

---@return string|nil data
---@return string? host_or_err
---@return integer? port
function udp:receivefrom(size) end

---@return string|nil data
---@return string? err
function udp:receive(size) end

function udp:setpeername(host, port) end

function udp:setsockname(host, port) end

function udp:getpeername() end

function udp:getsockname() end

function udp:settimeout(t, mode) end

function udp:gettimeout() end

function udp:getfamily() end

function udp:setoption(name, value) end

function udp:getoption(name) end

function udp:close() end

function udp:dirty() end

function udp:getfd() end
