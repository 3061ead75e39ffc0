---@meta asyncio.http
-- `require "asyncio.http"` (also `asyncio.http`) for the Lua language server: the HTTP/1.1
-- client and server (docs/api-http.md).

---@class asyncio.http
asyncio.http = {}

---@type asyncio.ErrorClass
asyncio.ProtocolError = nil

---@alias asyncio.http.body string|fun(): string?
---@alias asyncio.http.headers table<string, string|number|string[]>

---@class asyncio.http.request_options
---@field headers? asyncio.http.headers
---@field body? asyncio.http.body
---@field json? any
---@field timeout? number
---@field connect_timeout? number
---@field redirects? integer
---@field decompress? boolean
---Bytes a gzip/deflate body may decompress to (default 64 MiB; math.huge: no limit); past it ProtocolError.
---@field max_decompressed_size? number
---@field ssl? boolean|table
---@field client? asyncio.http.Client

---An HTTP request; the Response once its head has arrived (a status is never an error).
---@param method string
---@param url string
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.request(method, url, opts) end

---@param url string
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.get(url, opts) end

---@param url string
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.head(url, opts) end

---@param url string
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.delete(url, opts) end

---@param url string
---@param body? asyncio.http.body
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.post(url, body, opts) end

---@param url string
---@param body? asyncio.http.body
---@param opts? asyncio.http.request_options
---@return asyncio.http.Response
function asyncio.http.put(url, body, opts) end

---A pool of keep-alive connections per scheme, host and port.
---@param opts? {max_per_host: integer?, idle_timeout: number?, timeout: number?, connect_timeout: number?, ssl: boolean|table|nil, max_decompressed_size: number?}
---@return asyncio.http.Client
function asyncio.http.Client(opts) end

---Serves HTTP: handler(req) runs in its connection's task (requests answered in order) and returns status [, headers [, body]].
---@param handler fun(req: asyncio.http.Request): integer, asyncio.http.headers?, (string|table|fun(): string?)?
---@param host? string
---@param port? integer
---@param opts? {ssl: table?, reuse_port: boolean?, backlog: integer?, family: string?, ssl_handshake_timeout: number?, max_header_size: integer?, max_body_size: integer?, header_timeout: number?, idle_timeout: number?, max_requests: integer?}
---@return asyncio.http.Server
function asyncio.http.serve(handler, host, port, opts) end

---@class asyncio.http.Client
local Client = {}

---@return asyncio.http.Response
function Client:request(method, url, opts) end
---@return asyncio.http.Response
function Client:get(url, opts) end
---@return asyncio.http.Response
function Client:head(url, opts) end
---@return asyncio.http.Response
function Client:delete(url, opts) end
---@return asyncio.http.Response
function Client:post(url, body, opts) end
---@return asyncio.http.Response
function Client:put(url, body, opts) end
---Closes the idle connections; those in use close when their response is done.
function Client:close() end

---@class asyncio.http.Response
---@field status integer
---@field reason string
---@field version string
---@field headers table<string, string>
---@field url string
local Response = {}

---The whole body (decoded when compressed).
---@return string
function Response:read() end
---The body's pieces as they arrive, for a generic for.
---@return fun(): string?
function Response:chunks() end
---The body decoded as JSON.
---@return any
function Response:json() end
---Drops what is left of the body, and its connection.
function Response:close() end

---@class asyncio.http.Request
---@field method string
---@field target string
---@field path string
---@field query string?
---@field version string
---@field headers table<string, string>
---@field peer {host: string, port: integer}
local Request = {}

---@return string host
---@return integer port
function Request:peername() end
---@return string
function Request:read() end
---@return fun(): string?
function Request:chunks() end
---@return any
function Request:json() end

---@class asyncio.http.Server
local Server = {}

---@return string host
---@return integer port
function Server:sockname() end
---Stops accepting; requests in flight finish, idle connections close.
function Server:close() end
function Server:wait_closed() end
function Server:serve_forever() end
