-- http.lua — asyncio.http: HTTP/1.1 client and server on streams, parsed by llhttp
-- (async/http.c). This file holds what both sides share (status texts, Date, header
-- checks, JSON, the ProtocolError class) and builds the module from http/server.lua and
-- http/client.lua.
local core, M = ...

local type, error, tostring, pairs, ipairs = type, error, tostring, pairs, ipairs
local lower, find, format = string.lower, string.find, string.format

local H = {}

-- Bad arguments and options are reported at the user's line (argcheck.c).
local arg_error = core._arg_error
H.arg_error = arg_error

-- Reason phrases by status, and the Date header's value (made once a second): from
-- async/net/http_server.c, which writes the server's responses.
H.REASONS = core.net.http_reasons()
H.date = core.net.http_date

-- A header line put together from a caller's name and value: CR, LF or a colon in a
-- name, or CR/LF in a value, would let one header become another (or end the head).
function H.header_line(fname, name, value)
  if type(name) ~= "string" or name == "" or find(name, "[%c :]") then
    arg_error(fname .. ": invalid header name " .. format("%q", tostring(name)))
  end
  local tv = type(value)
  if tv == "number" then
    value = tostring(value)
  elseif tv ~= "string" then
    arg_error(fname .. ": header '" .. name .. "' must be a string or number, got " .. tv)
  end
  if find(value, "[\r\n]") then
    arg_error(fname .. ": header '" .. name .. "' contains a line break")
  end
  return name .. ": " .. value .. "\r\n"
end

-- Appends the lines of a headers table to parts (a list value gives one line each);
-- returns the new count and the set of lower-case names given.
function H.add_headers(fname, parts, n, headers)
  local given = {}
  if headers == nil then return n, given end
  if type(headers) ~= "table" then arg_error(fname .. ": headers must be a table, got " .. type(headers)) end
  for name, value in pairs(headers) do
    if type(value) == "table" then
      for _, v in ipairs(value) do
        n = n + 1
        parts[n] = H.header_line(fname, name, v)
      end
    else
      n = n + 1
      parts[n] = H.header_line(fname, name, value)
    end
    if type(name) == "string" then given[lower(name)] = true end
  end
  return n, given
end

-- "chunked" alone, or codings ending in it that alua can undo (none but chunked here:
-- a request's other transfer codings are refused with 501).
function H.only_chunked(te)
  return lower(te):match("^%s*chunked%s*$") ~= nil
end

-- lua-cjson, loaded at first use.
local cjson
function H.json()
  if cjson == nil then cjson = require "cjson" end
  return cjson
end

function H.decode_json(fname, text)
  local ok, v = pcall(H.json().decode, text)
  if not ok then error(fname .. ": the body is not valid JSON (" .. tostring(v) .. ")", 0) end
  return v
end

H.ProtocolError = M.ProtocolError

-- Options tables: an unknown key is an error that names it (and the nearest known one),
-- a value of the wrong type the option, the type wanted and the type given.
function H.check_options(fname, opts, known)
  if opts == nil then return {} end
  return core._check_options(fname, opts, known)
end

-- ---- reading and writing a connection ----------------------------------------------

local net = core.net
local http_next, http_feed, http_finish = net.http_next, net.http_feed, net.http_finish
local read_some, wait_read, net_write = net.read_some, net.wait_read, net.write
local drain_needed, wait_drain = net.drain_needed, net.wait_drain
local await, concat = M.await, table.concat

-- The next parser event of a connection c ({h =, p =}), reading as needed; "eof" at
-- the end of the stream. on_data(c), if given, is called as bytes arrive.
function H.next_event(c, on_data)
  local p, h = c.p, c.h
  while true do
    local ev, a, b, d, e, f, g, i = http_next(p)
    if ev then return ev, a, b, d, e, f, g, i end
    local status, data = read_some(h)
    if status == "ok" then
      if on_data then on_data(c) end
      http_feed(p, data)
    elseif status == "eof" then
      local fev, name, reason = http_finish(p)
      if fev then return fev, name, reason end
      return "eof"
    else
      await(wait_read(h))
    end
  end
end

function H.write(h, data)
  net_write(h, data)
  if drain_needed(h) then await(wait_drain(h)) end
end

-- Writes the pieces an iterator returns (chunked: each framed), then the last chunk.
function H.write_stream(fname, h, body, chunked)
  for piece in body do
    if type(piece) ~= "string" then
      error(fname .. ": the body iterator returned a " .. type(piece) .. " (expected a string or nil)", 0)
    end
    if piece ~= "" then H.write(h, chunked and format("%x\r\n", #piece) .. piece .. "\r\n" or piece) end
  end
  if chunked then H.write(h, "0\r\n\r\n") end
end

-- The read, chunks and json methods of a message whose body's next piece (or nil at
-- its end) next_piece(message) gives.
function H.body_methods(class, name, next_piece)
  class.read = M.async(function(msg)
    -- most bodies come in one piece: no table for them
    local first = next_piece(msg)
    if first == nil then return "" end
    local piece = next_piece(msg)
    if piece == nil then return first end
    local parts, n = { first, piece }, 2
    while true do
      local piece = next_piece(msg)
      if piece == nil then break end
      n = n + 1
      parts[n] = piece
    end
    return concat(parts, "", 1, n)
  end, name .. ".read")
  function class.chunks(msg)
    return function() return next_piece(msg) end
  end
  local read = class.read
  class.json = M.async(function(msg)
    return H.decode_json(name .. ":json", await(read(msg)))
  end, name .. ".json")
end

local http = { ProtocolError = M.ProtocolError }
core.load_part("asyncio.http.server", core, M, H, http)
core.load_part("asyncio.http.client", core, M, H, http)

return http
