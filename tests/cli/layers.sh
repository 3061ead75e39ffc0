#!/usr/bin/env bash
# layers.sh — the layout of async/ holds: core/ includes no net/ or os/ header, net/ and
# os/ include core/core.h, os/ reaches net/ only through net/net.h, net/ never reaches os/;
# the same rules on the built objects (which layer's symbols each object uses, so an
# undeclared call cannot slip through); and the Lua surface of each layer is registered
# by that layer.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
ALUA_PATH=${ALUA_BIN:-build/bin/alua}
OBJ=$(dirname "$(dirname "$ALUA_PATH")")/obj/async # build/obj/async, or build/asan/...

# ok_if NAME FILE: ok when FILE (the offences found) is empty, else lists them
ok_if() {
  if [ ! -s "$2" ]; then echo "ok - $1"; else
    echo "not ok - $1"
    sed 's/^/  /' "$2" | head -20
  fi
}

# includes LAYER: "file: header" for each quoted #include of async/LAYER/*.[ch]
includes() {
  grep -Ho '^#include "[^"]*"' async/"$1"/*.[ch] | sed 's/:#include "\(.*\)"$/: \1/'
}

# ---- the include rules, on the sources ---------------------------------------------
includes core | grep -Ev ': (core\.h|stdlib_files\.h)$' >"$TMP/core"
ok_if "async/core/ includes only its own headers (no net/ or os/)" "$TMP/core"

# beside net.h, the plain-C cores the fuzz targets build alone: readbuf, http_parse, inflate
includes net | grep -Ev ': (net\.h|readbuf\.h|http_parse\.h|inflate\.h|core/core\.h)$' >"$TMP/net"
ok_if "async/net/ includes net.h, its plain-C cores' headers and core/core.h only (never os/)" "$TMP/net"

includes os | grep -Ev ': (os\.h|core/core\.h|net/net\.h)$' >"$TMP/os"
ok_if "async/os/ includes os.h, core/core.h and net/net.h only (net's internals never)" "$TMP/os"

# net.h and os.h stand on core.h; net.h never names os/, core.h names neither
{ grep -q '^#include "core/core.h"' async/net/net.h || echo "net.h: does not include core/core.h"
  grep -q '^#include "core/core.h"' async/os/os.h || echo "os.h: does not include core/core.h"
  grep -Hn 'os/\|os\.h' async/net/net.h | grep '#include'
  grep -Hn '#include "\(net\|os\)/' async/core/core.h; } >"$TMP/headers"
ok_if "the layer headers: net.h and os.h include core/core.h, core.h neither of them" "$TMP/headers"

# ---- the same, on the objects: what each layer's objects take from the others -------
# objects LAYER: the object of each source of async/LAYER (not those of removed files)
objects() { for c in async/"$1"/*.c; do echo "$OBJ/$1/$(basename "$c" .c).o"; done; }
# defined LAYER: the global symbols async/LAYER's objects define
defined() { objects "$1" | xargs nm --defined-only -g 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u; }
# used LAYER: "file: symbol" for each symbol an object of async/LAYER leaves undefined
used() {
  for o in $(objects "$1"); do
    nm -u "$o" | awk -v f="$1/$(basename "$o" .o).c" '{ print f ": " $2 }'
  done
}
missing=$(for l in core net os; do objects $l; done | while read -r o; do [ -f "$o" ] || echo "$o"; done)
if [ -n "$missing" ]; then
  echo "not ok - objects of async/ built (build first: make all); missing: $(echo $missing)"
else
  defined core >"$TMP/core.syms"
  defined net >"$TMP/net.syms"
  defined os >"$TMP/os.syms"
  net_h_names=$(grep -o '\b[a-z_][a-z0-9_]*(' async/net/net.h | tr -d '(' | sort -u)

  used core | grep -Fwf <(cat "$TMP/net.syms" "$TMP/os.syms") >"$TMP/core.uses"
  ok_if "objects of async/core/ use nothing of net/ or os/" "$TMP/core.uses"

  used net | grep -Fwf "$TMP/os.syms" >"$TMP/net.uses"
  ok_if "objects of async/net/ use nothing of os/" "$TMP/net.uses"

  used os | grep -Fwf "$TMP/net.syms" | while read -r file sym; do
    grep -qx "$sym" <<<"$net_h_names" || echo "$file $sym (not in net.h)"
  done >"$TMP/os.uses"
  ok_if "objects of async/os/ use of net/ only what net.h declares" "$TMP/os.uses"
fi

# ---- names: what a file exports carries its name --------------------------------------
# Every global symbol (function or variable) an object of async/ defines starts with the
# name of its file and "_" (stream_new is in stream.c). The deliberate exceptions:
#   luaopen_asyncio  Lua's name for a C module's entry point (os/asyncio.c)
#   __odr_asan.*     what ASan adds for each global (make check builds)
if [ -z "$missing" ]; then
  for c in async/*/*.c; do # a flat async/*.c is refused below
    o=$OBJ/${c#async/}
    o=${o%.c}.o
    f=$(basename "$c" .c)
    nm --defined-only -g "$o" | awk -v f="$f" -v c="$c" \
      'NF == 3 && index($3, f "_") != 1 && $3 != "luaopen_asyncio" && $3 !~ /^__odr_asan/ { print c ": " $3 }'
  done >"$TMP/prefix"
  ok_if "every function or variable a file of async/ exports starts with its file's name" "$TMP/prefix"
fi

# ---- bindings: a Lua binding is named l_ and what Lua calls it ------------------------
# In each luaL_Reg table of async/, {"name", fn} has fn = l_..._name (l_net_read_line is
# core.net.read_line; a leading "_" of the Lua name is dropped). The deliberate exceptions:
#   metamethods ("__gc", ...)  keep TYPE_gc / TYPE_tostring
awk '/luaL_Reg/ { inreg = 1 } inreg && /^};/ { inreg = 0 }
     inreg {
       while (match($0, /\{"[A-Za-z0-9_]+", *[A-Za-z0-9_]+\}/)) {
         pair = substr($0, RSTART + 2, RLENGTH - 3); $0 = substr($0, RSTART + RLENGTH)
         split(pair, p, /", */); name = p[1]; fn = p[2]; sub(/^_+/, "", name)
         if (p[1] ~ /^__/) continue
         if (fn !~ /^l_/ || (fn != "l_" name && substr(fn, length(fn) - length(name)) != "_" name))
           print FILENAME ": {\"" p[1] "\", " fn "}"
       }
     }' async/*/*.c >"$TMP/bindings"
ok_if "every Lua binding of async/ is named l_ and its Lua name" "$TMP/bindings"

# ---- registration: each layer fills the core table itself ---------------------------
# A file opens its own part (FILE_open) or, for a layer's entry file, its layer's files;
# os/asyncio.c (luaopen_asyncio, in the top layer) calls exactly one entry per layer.
{ grep -Hn '\b\(net\|os\)_open(L)' async/core/*.c
  grep -Hn '\b\(os\|signal\|fs\|process\)_open(L)' async/net/*.c
  grep -Hn '\b\(net\|stream\|tcp\|tls\|pipe\|udp\|dns\)_open(L)' async/os/*.c | grep -v '^async/os/asyncio\.c:'
  for f in async/*/*.c; do
    base=$(basename "$f" .c) layer=$(basename "$(dirname "$f")")
    [ "$base" = "$layer" ] || [ "$base" = module ] || [ "$base" = asyncio ] && continue
    grep -Hn '^  [a-z]*_open(L);' "$f" | grep -v "^$f:[0-9]*:  ${base}_open" | sed 's/$/ (only a layer entry opens other files)/'
  done
  [ "$(grep -o '[a-z_]*_open(L);' async/os/asyncio.c | tr '\n' ' ')" = "module_open(L); net_open(L); os_open(L); " ] ||
    echo "os/asyncio.c: expected module_open, net_open, os_open in that order"; } >"$TMP/open"
ok_if "each layer registers its own Lua functions (its entry opens its files only)" "$TMP/open"

# ---- rooms: every C file of async/ is in a layer --------------------------------------
ls async/*.[ch] 2>/dev/null | sed 's/$/: not in core\/, net\/ or os\//' >"$TMP/flat"
ok_if "no C file of async/ stands outside core/, net/ and os/" "$TMP/flat"
