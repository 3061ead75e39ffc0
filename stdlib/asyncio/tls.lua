-- tls.lua — the streams' ssl option on async/net/tls.c: contexts made from the option table
-- (a client's kept while any connection uses it), and the handshake of a connection made
-- (open_connection) or accepted (start_server) before the streams are handed out.
local core, asyncio = ...

local net = core.net
local await = asyncio.await
local CancelledError, TimeoutError = asyncio.CancelledError, asyncio.TimeoutError
local type, error, pairs, pcall, tostring, setmetatable = type, error, pairs, pcall, tostring, setmetatable
local concat = table.concat

local tls_handshake, wait_read = net.tls_handshake, net.wait_read

local HANDSHAKE_TIMEOUT = 60 -- seconds, as Python's ssl_handshake_timeout

local KEYS = {
  cafile = "string", certfile = "string", keyfile = "string", password = "string",
  verify = "boolean", server_hostname = "string", suppress_ragged_eofs = "boolean",
  on_handshake_error = "function",
}

-- The ssl option checked: true means {} (all defaults).
local function options(fname, ssl)
  if ssl == true then return {} end
  if type(ssl) ~= "table" then core._arg_error(fname .. ": ssl must be true or a table, got " .. type(ssl)) end
  return core._check_options(fname .. ": ssl", ssl, KEYS)
end

local function handshake_timeout(fname, opts)
  local t = opts.ssl_handshake_timeout
  if t == nil then return HANDSHAKE_TIMEOUT end
  if type(t) ~= "number" or not (t > 0) then
    core._arg_error(fname .. ": ssl_handshake_timeout must be a positive number, got " .. tostring(t))
  end
  return t
end

local tls = {}

-- Loading the system's CA store takes milliseconds: a client context is shared by the
-- connections made with the same files while any of them (or the cache) holds it.
local client_contexts = setmetatable({}, { __mode = "v" })

-- The client side of opts.ssl: {ctx=, verify=, server_hostname=, ragged=, timeout=}.
function tls.client(fname, opts)
  local o = options(fname, opts.ssl)
  if o.on_handshake_error then core._arg_error(fname .. ": on_handshake_error is a server option") end
  local verify = o.verify ~= false
  local key = concat({ tostring(verify), o.cafile or "", o.certfile or "", o.keyfile or "", o.password or "" }, "\0")
  local ctx = client_contexts[key]
  if ctx == nil then
    ctx = net.tls_context(false, verify, o.cafile, o.certfile, o.keyfile, o.password)
    client_contexts[key] = ctx
  end
  return { ctx = ctx, verify = verify, server_hostname = o.server_hostname,
    ragged = o.suppress_ragged_eofs, timeout = handshake_timeout(fname, opts) }
end

-- The server side: certfile is required; client certificates are asked for (and
-- checked against cafile) when cafile is given, unless verify = false. A client that
-- ends without close_notify ends its stream as usual (suppress_ragged_eofs defaults to
-- true here): clients that just close are routine, and a request carries its own length;
-- a client, whose response may be cut short, is told (the default false).
function tls.server(fname, opts)
  local o = options(fname, opts.ssl)
  if o.certfile == nil then core._arg_error(fname .. ": a TLS server needs ssl.certfile (and keyfile)") end
  if o.server_hostname then core._arg_error(fname .. ": server_hostname is a client option") end
  local verify = o.verify
  if verify == nil then verify = o.cafile ~= nil end
  if verify and o.cafile == nil then core._arg_error(fname .. ": verifying clients needs ssl.cafile") end
  return { ctx = net.tls_context(true, verify, o.cafile, o.certfile, o.keyfile, o.password),
    ragged = o.suppress_ragged_eofs ~= false, on_error = o.on_handshake_error,
    timeout = handshake_timeout(fname, opts) }
end

-- Awaits the read events that step the handshake (tls.c) until it is done, or raises.
local function run(h, timeout)
  local scope <close> = asyncio.timeout(timeout)
  while not tls_handshake(h) do await(wait_read(h)) end
end

-- The handshake on the connected stream h; on failure or cancellation h is closed and the
-- error raised (an SSLError with OpenSSL's reason, TimeoutError, an OSError).
-- `hostname` is what the server's certificate must name (a client that verifies).
function tls.handshake(h, t, server, hostname, target)
  local ok, err = pcall(function()
    net.tls_start(h, t.ctx, server, hostname, not server and t.verify, t.ragged)
    run(h, t.timeout)
  end)
  if ok then return end
  net.close(h)
  if TimeoutError:is(err) then
    err.message = "handshake: no TLS handshake within " .. t.timeout .. " seconds"
  end
  if type(err) == "table" and type(err.message) == "string" and target and not CancelledError:is(err) then
    err.message = err.message .. " (" .. target .. ")"
  end
  error(err, 0)
end

-- The task of a connection a TLS server accepted: the handshake, then the callback
-- (`run_handler`, streams.lua's) on the decrypted streams (`make_streams`, streams.lua's
-- too: tls.lua is loaded first). A failed handshake only closes the connection (the
-- client sees the alert), unless the server asked to hear of it.
function tls.serve(t, h, run_handler, cb, make_streams)
  local target
  if net.stream_kind(h) == "tcp" then
    local pok, host, port = pcall(net.peername, h)
    if pok and host then target = "client " .. host .. " port " .. port end
  end
  local ok, err = pcall(tls.handshake, h, t, true, nil, target)
  if not ok then
    if CancelledError:is(err) then error(err, 0) end
    if t.on_error then
      local hok, herr = pcall(function()
        local res = t.on_error(err)
        if asyncio.iscoroutine(res) then await(res) end
      end)
      if not hok then core._report("Unhandled error in on_handshake_error of start_server:", herr) end
    end
    return
  end
  return run_handler(cb, make_streams(h))
end

-- no public names: what streams.lua shares for its ssl option
return {}, tls
