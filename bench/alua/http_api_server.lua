-- http_api_server.lua — workload E on asyncio.http (llhttp, a task per request) instead of
-- bare streams: the same "hello" answer to wrk -t1 -c100.
-- usage: alua http_api_server.lua PORT [HOST]
local http = require "asyncio.http"
local port = tonumber(arg[1]) or 8080
local host = arg[2] or "127.0.0.1"
local HEADERS = { ["content-type"] = "text/plain" }
local server = await(http.serve(function() return 200, HEADERS, "Hello, World!" end, host, port))
await(server:serve_forever())
