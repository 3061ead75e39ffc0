#!/usr/bin/env bash
# streams_peers.sh — alua's sockets against peers the project did not write: curl against
# scripts/examples/http_hello.lua, an alua client against python3 -m http.server and against
# a real redis-server; the echo and chat examples; a failing connection callback's report.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

check() { # check NAME: the last condition ($?) as ok / not ok
  if [ "$?" = 0 ]; then echo "ok - $1"; else echo "not ok - $1"; fi
}

# a port nothing listens on (alua picks it: a server on port 0, closed)
free_port() {
  "$ALUA" -e 'local s = await(asyncio.start_server(function() end, "127.0.0.1", 0))
              print((select(2, s:sockname()))) s:close()'
}

# start_bg NAME command...: runs it in the background (BG_PID); waits for its first line
start_bg() {
  local name=$1
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  BG_PID=$!
  PIDS+=("$BG_PID")
  for _ in $(seq 200); do
    [ -s "$TMP/$name.out" ] && return 0
    kill -0 "$BG_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# wait_port PORT: until something accepts connections there (5 s at most)
wait_port() {
  "$ALUA" -e "
    for _ = 1, 100 do
      if pcall(function() local r, w = await(asyncio.open_connection('127.0.0.1', $1)) w:close() end) then return end
      await(asyncio.sleep(0.05))
    end
    os.exit(1)"
}

# ---- echo server and client ------------------------------------------------------------
# (under timeout: a background job of a script starts with SIGINT ignored, timeout resets it
# for alua and passes our SIGINT on)
start_bg echo timeout -s INT --preserve-status 120 "$ALUA" scripts/examples/echo_server.lua
ECHO_PID=$BG_PID
port=$(sed -n 's/^echo server on 127.0.0.1 port \([0-9]*\)$/\1/p' "$TMP/echo.out")
[ -n "$port" ]
check "echo_server.lua prints the port it listens on"
expect "echo_client.lua: every line comes back" 0 $'1: hello\n2: streams\n3: of alua' -- \
  "$ALUA" scripts/examples/echo_client.lua "$port" hello streams "of alua"
payload=$(head -c 300000 /dev/zero | tr '\0' 'e')
out=$("$ALUA" -e "
  local r, w = await(asyncio.open_connection('127.0.0.1', $port))
  local data = string.rep('e', 300000)
  w:write(data) w:write_eof()
  local back = await(r:read())
  print(#back, back == data)")
[ "$out" = $'300000\ttrue' ]
check "echo server: 300 KB round trip with write_eof"
kill -INT "$ECHO_PID"
wait "$ECHO_PID"
status=$?
[ "$status" = 130 ]
check "echo server: Ctrl-C stops serve_forever (exit 130)"

# ---- chat server -----------------------------------------------------------------------
start_bg chat "$ALUA" scripts/examples/chat_server.lua
port=$(sed -n 's/^chat server on 127.0.0.1 port \([0-9]*\)$/\1/p' "$TMP/chat.out")
cat >"$TMP/chat_clients.lua" <<LUA
local port = $port
local ra, wa = await(asyncio.open_connection("127.0.0.1", port))
assert(await(ra:readline()):match("^welcome .*, 0 other"))
local rb, wb = await(asyncio.open_connection("127.0.0.1", port))
assert(await(rb:readline()):match("^welcome .*, 1 other"))
assert(await(ra:readline()):match("joined"))
local rc, wc = await(asyncio.open_connection("127.0.0.1", port))
await(rc:readline())
await(ra:readline()) await(rb:readline())
wa:write("hello everyone\n")
local function show(line, who) return (line:gsub("^[%d.]+:%d+", who):gsub("\n$", "")) end
print(show(await(rb:readline()), "B got"))
print(show(await(rc:readline()), "C got"))
wb:close()
print(show((await(ra:readline()):gsub("^%* ", "")), "* someone"))
wa:close() wc:close()
LUA
expect "chat_server.lua broadcasts lines to every other client" 0 \
  $'B got: hello everyone\nC got: hello everyone\n* someone left' -- "$ALUA" "$TMP/chat_clients.lua"

# ---- curl against the HTTP example ---------------------------------------------------------
start_bg http "$ALUA" scripts/examples/http_hello.lua
port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$TMP/http.out")
[ -n "$port" ]
check "http_hello.lua prints its address"
expect "curl: two requests on one keep-alive connection" 0 \
  $'Hello, world! / (request 1 on connection 1)\nHello, world! /again (request 2 on connection 1)' -- \
  curl -s --max-time 10 "http://127.0.0.1:$port/" "http://127.0.0.1:$port/again"
size=$(curl -s --max-time 10 -D "$TMP/headers" -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port/h")
grep -q "^Content-Length: $size"$'\r$' "$TMP/headers" && grep -q $'^Connection: keep-alive\r$' "$TMP/headers"
check "curl: Content-Length and Connection: keep-alive headers"
expect "curl: a POST body is read by its Content-Length" 0 "received 5000 bytes (request 1 on connection 3)" -- \
  curl -s --max-time 10 --data-binary "@-" "http://127.0.0.1:$port/post" < <(head -c 5000 /dev/zero)
curl -s -0 --max-time 10 -D "$TMP/headers10" -o /dev/null "http://127.0.0.1:$port/"
grep -q $'^Connection: close\r$' "$TMP/headers10"
check "curl -0 (HTTP/1.0): the server closes after the response"
n=$(curl -s --no-progress-meter --max-time 20 --parallel --parallel-max 20 $(for i in $(seq 100); do echo "http://127.0.0.1:$port/p$i"; done) |
  grep -c '^Hello, world! /p[0-9]* (request' 2>/dev/null)
[ "$n" = 100 ]
check "curl --parallel: 100 requests over 20 connections"
curl -s --max-time 10 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
  "http://127.0.0.1:$port/" "http://127.0.0.1:$port/x" >"$TMP/reuse"
[ "$(cat "$TMP/reuse")" = $'200 1\n200 0' ]
check "curl reuses the connection for the second URL (num_connects 0)"

# ---- an alua client against python3 -m http.server ----------------------------------------
mkdir -p "$TMP/www"
head -c 123457 /dev/urandom >"$TMP/www/blob.bin"
printf 'plain text\n' >"$TMP/www/hello.txt"
port=$(free_port)
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$TMP/www" >"$TMP/py.out" 2>&1 &
PIDS+=($!)
wait_port "$port"
check "python3 -m http.server is up"
expect "parallel_fetch.lua fetches 30 files from python's http.server, 6 at a time" 0 \
  $'status 200: 30 responses\n30 requests, 3703710 body bytes, at most 6 connections at once' -- \
  "$ALUA" scripts/examples/parallel_fetch.lua 127.0.0.1 "$port" /blob.bin 30 6
expect "a missing file: status 404 from python" 0 \
  "status 404: 2 responses" -- \
  bash -c "'$ALUA' scripts/examples/parallel_fetch.lua 127.0.0.1 '$port' /missing 2 2 | head -1"
cat >"$TMP/get.lua" <<LUA
local r, w = await(asyncio.open_connection("127.0.0.1", $port))
w:write("GET /blob.bin HTTP/1.0\r\n\r\n")
local head = await(r:readuntil("\r\n\r\n"))
local body = await(r:read())
local f = io.open("$TMP/www/blob.bin", "rb")
local want = f:read("a")
f:close()
print(head:match("^HTTP/1%.%d (%d+)"), #body, body == want)
LUA
expect "an HTTP/1.0 GET read to the end matches the file byte for byte" 0 $'200\t123457\ttrue' -- \
  "$ALUA" "$TMP/get.lua"

# ---- an alua client against redis-server ----------------------------------------------------
if ! command -v redis-server >/dev/null; then
  echo "not ok - redis-server is installed (scripts/install-deps.sh installs it)"
else
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >"$TMP/redis.out" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_port "$port"
  check "redis-server is up on port $port"
  expect "redis_client.lua speaks RESP to redis-server" 0 "PING -> PONG
SET alua:greeting hello -> OK
GET alua:greeting -> hello
GET alua:missing -> (nil)
RPUSH alua:list a b c -> 3
LRANGE alua:list 0 -1 -> [a, b, c]
binary value of 100016 bytes comes back equal -> true
NOSUCHCOMMAND raises -> true
pipeline of 1000 INCR, last reply -> 1000
10 clients x 50 INCR alua:shared -> 500" -- "$ALUA" scripts/examples/redis_client.lua "$port"
  kill "$REDIS_PID"
  wait "$REDIS_PID" 2>/dev/null
  ! kill -0 "$REDIS_PID" 2>/dev/null
  check "redis-server stopped"
fi

# ---- a failing connection callback is reported, the server goes on ------------------------
cat >"$TMP/handler_error.lua" <<'LUA'
local n = 0
local server = await(asyncio.start_server(function(r, w)
  n = n + 1
  if n == 1 then error("boom in the handler") end
  w:write("fine")
  w:close()
end, "127.0.0.1", 0))
local port = select(2, server:sockname())
local r1, w1 = await(asyncio.open_connection("127.0.0.1", port))
print("first:", await(r1:read()) == "")
local r2, w2 = await(asyncio.open_connection("127.0.0.1", port))
print("second:", await(r2:read()))
w1:close() w2:close()
server:close()
LUA
expect "a failing client_connected_cb closes its connection; the next one is served" 0 \
  $'first:\ttrue\nsecond:\tfine' -- "$ALUA" "$TMP/handler_error.lua"
stderr_has "the callback's error is reported with its traceback" \
  "Unhandled error in a client_connected_cb.*|boom in the handler"
grep -q "boom in the handler" "$TMP/stderr" && grep -q "handler_error.lua:4" "$TMP/stderr"
check "the report names the error and where it happened"

# ---- a script that starts a server keeps serving after its main chunk ---------------------
cat >"$TMP/keeps.lua" <<'LUA'
local server = await(asyncio.start_server(function(r, w)
  w:write("served after the main chunk\n")
  w:close()
  SERVER:close()
end, "127.0.0.1", 0))
SERVER = server
print(select(2, server:sockname()))
io.stdout:flush()
LUA
start_bg keeps "$ALUA" "$TMP/keeps.lua"
port=$(head -1 "$TMP/keeps.out")
expect "a server keeps the loop alive after the main chunk ends" 0 "served after the main chunk" -- \
  "$ALUA" -e "local r, w = await(asyncio.open_connection('127.0.0.1', $port)) io.write(await(r:read())) w:close()"
for _ in $(seq 100); do kill -0 "$BG_PID" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$BG_PID" 2>/dev/null
check "closing the server lets the script exit"
