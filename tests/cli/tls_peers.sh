#!/usr/bin/env bash
# tls_peers.sh — alua's TLS against peers the project did not write: curl and openssl
# s_client against scripts/examples/https_hello.lua, an alua client against python3's
# ssl-wrapped http.server; certificates made here by tests/tls_certs.sh.
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

tests/tls_certs.sh "$TMP/certs"
check "tests/tls_certs.sh makes the test CA and certificates"
C=$TMP/certs

# ---- curl and s_client against https_hello.lua ----------------------------------------------
$ALUA_RUNNER scripts/examples/https_hello.lua "$C/server.pem" "$C/server.key" >"$TMP/https.out" 2>"$TMP/https.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 200); do [ -s "$TMP/https.out" ] && break; sleep 0.05; done
port=$(sed -n 's|^listening on https://localhost:\([0-9]*\)/$|\1|p' "$TMP/https.out")
[ -n "$port" ]
check "https_hello.lua prints its address"
cipher=$(curl -s --max-time 10 --cacert "$C/ca.pem" "https://localhost:$port/" | sed -n 's/^Hello over TLSv1.3 (\(.*\))! GET \/$/\1/p')
[ -n "$cipher" ]
check "curl --cacert: a TLS 1.3 response ($cipher)"
expect "curl: two requests on one kept-alive TLS connection" 0 \
  $'Hello over TLSv1.3 ('"$cipher"$')! GET /a\nHello over TLSv1.3 ('"$cipher"$')! GET /b' -- \
  curl -s --max-time 10 --cacert "$C/ca.pem" "https://localhost:$port/a" "https://localhost:$port/b"
expect "curl --tls-max 1.2 negotiates TLS 1.2" 0 "Hello over TLSv1.2 (ECDHE-ECDSA-AES256-GCM-SHA384)! GET /12" -- \
  curl -s --max-time 10 --cacert "$C/ca.pem" --tls-max 1.2 "https://localhost:$port/12"
curl -s --max-time 10 "https://localhost:$port/" >/dev/null
[ $? = 60 ]
check "curl without the CA refuses the certificate (exit 60)"
curl -s --max-time 10 "http://localhost:$port/" >/dev/null
[ $? = 52 ]
check "plain HTTP to the TLS port: an empty reply (curl exit 52)"
printf 'GET /s_client HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" -CAfile "$C/ca.pem" \
  -verify_return_error -servername localhost -verify_hostname localhost -quiet >"$TMP/s_client.out" 2>"$TMP/s_client.err"
[ $? = 0 ] && grep -q "^Hello over TLSv1.3 .*! GET /s_client$" "$TMP/s_client.out"
check "openssl s_client -verify_return_error: verified, answered, closed"
expect "the server goes on serving after the failed handshakes" 0 "Hello over TLSv1.3 ($cipher)! GET /again" -- \
  curl -s --max-time 10 --cacert "$C/ca.pem" "https://localhost:$port/again"
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
grep -q "handshake failed: handshake: tlsv1 alert unknown ca (client 127.0.0.1 port [0-9]*)" "$TMP/https.err" &&
  grep -q "handshake failed: handshake: http request (client 127.0.0.1 port [0-9]*)" "$TMP/https.err"
check "on_handshake_error heard curl's 'unknown ca' alert and the plain HTTP request"

# ---- an alua client against python3's http.server over TLS ------------------------------------
mkdir -p "$TMP/www"
head -c 200000 /dev/urandom >"$TMP/www/blob.bin"
cat >"$TMP/https_server.py" <<'PY'
import http.server, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
httpd = http.server.HTTPServer(("127.0.0.1", 0), lambda *a: Handler(*a, directory=sys.argv[3]))
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print("port", httpd.server_address[1], flush=True)
httpd.serve_forever()
PY
python3 "$TMP/https_server.py" "$C/server.pem" "$C/server.key" "$TMP/www" >"$TMP/py.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$TMP/py.out" ] && break; sleep 0.05; done
port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$TMP/py.out")
cat >"$TMP/get.lua" <<LUA
local r, w = await(asyncio.open_connection("localhost", $port, { ssl = { cafile = "$C/ca.pem" } }))
w:write("GET /blob.bin HTTP/1.0\r\nHost: localhost\r\n\r\n")
local head = await(r:readuntil("\r\n\r\n"))
local body = await(r:readexactly(tonumber(head:match("Content%-Length: (%d+)"))))
local f = io.open("$TMP/www/blob.bin", "rb")
local want = f:read("a")
f:close()
print(head:match("^HTTP/1%.%d (%d+)"), #body, body == want, w:get_extra_info("ssl").peer_subject)
w:close()
LUA
expect "an alua client GETs a file from python3's http.server over TLS, byte for byte" 0 \
  $'200\t200000\ttrue\tCN=localhost' -- $ALUA_RUNNER "$TMP/get.lua"
