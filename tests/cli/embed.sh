#!/usr/bin/env bash
# embed.sh — the embedding API: host programs (scripts/embed/) and the C test suite
# (tests/c/) built against libalua.a and run (under valgrind when VALGRIND=1); then
# `make install` into a temporary DESTDIR, a host built with pkg-config against the
# installed files, and stock lua5.4 loading the installed asyncio.so.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
BUILD_DIR=$(dirname "$(dirname "$ALUA")")
CFLAGS="-std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude $(pkg-config --cflags lua5.4 libuv openssl)"
LIBS="$BUILD_DIR/lib/libalua.a $(pkg-config --libs lua5.4 libuv openssl zlib) -lm -lpthread"
SAN_FLAGS=""
case "$(basename "$BUILD_DIR")" in asan) SAN_FLAGS="-fsanitize=address,undefined" ;; esac
RUN=()
# --fair-sched=yes: see tests/run.sh (a spinning worker must not starve alua_close)
[ "${VALGRIND:-0}" = 1 ] && RUN=(valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)

build() { # build NAME SOURCE
  if gcc $CFLAGS $SAN_FLAGS -o "$TMP/$1" "$2" $LIBS 2>"$TMP/cc.err"; then return 0; fi
  echo "not ok - $1 builds"; sed 's/^/  /' "$TMP/cc.err" | head -10; return 1
}

build own_loop scripts/embed/own_loop.c &&
  expect "host (a): alua owns its loop" 0 $'top-level await got\tvalue\ntask done after 3 sleeps\nresult\t3' -- "${RUN[@]}" "$TMP/own_loop"
build host_loop scripts/embed/host_loop.c &&
  expect "host (b): the host's loop, a host event resolves a Future" 0 $'lua got\treading from the host\t42\nhost loop closed: yes' -- "${RUN[@]}" "$TMP/host_loop"
build foreign_poll scripts/embed/foreign_poll.c &&
  expect "host (c): a foreign poll() loop drives alua" 0 $'gathered\ta b\npoll loop finished (without spinning)' -- "${RUN[@]}" "$TMP/foreign_poll"
build threads scripts/embed/threads.c &&
  expect "host (d): four states in four threads" 0 $'state 1: 5050 (ok)\nstate 2: 10100 (ok)\nstate 3: 15150 (ok)\nstate 4: 20200 (ok)' -- "${RUN[@]}" "$TMP/threads"

for t in tests/c/*_test.c; do
  name=$(basename "$t" .c)
  build "$name" "$t" || continue
  "${RUN[@]}" "$TMP/$name" > "$TMP/$name.out" 2>&1
  status=$?
  cat "$TMP/$name.out" | grep -E '^(ok|not ok|  )'
  [ $status -eq 0 ] && echo "ok - $name exits 0" || echo "not ok - $name exits 0 (status $status)"
done

# make install into a DESTDIR, then use what was installed
if [ "$BUILD_DIR" = build ]; then
  DEST="$TMP/dest"
  if make -s install DESTDIR="$DEST" PREFIX=/usr/local >"$TMP/install.log" 2>&1; then
    echo "ok - make install into a DESTDIR"
    P="$DEST/usr/local"
    for f in bin/alua lib/libalua.a lib/libalua.so lib/libalua.so.0 include/alua.h \
             lib/pkgconfig/alua.pc share/man/man1/alua.1 lib/lua/5.4/asyncio.so; do
      [ -e "$P/$f" ] && echo "ok - installed $f" || echo "not ok - installed $f"
    done
    readelf -d "$P/lib/libalua.so.0" | grep -q 'SONAME.*libalua.so.0' \
      && echo "ok - libalua.so carries its soname" || echo "not ok - libalua.so carries its soname"
    sed -i "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/alua.pc"
    if gcc -o "$TMP/pc_host" scripts/embed/own_loop.c \
         $(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs alua) 2>"$TMP/cc.err"; then
      expect "a host built with pkg-config against the installed files" 0 \
        $'top-level await got\tvalue\ntask done after 3 sleeps\nresult\t3' -- env LD_LIBRARY_PATH="$P/lib" "$TMP/pc_host"
    else
      echo "not ok - a host built with pkg-config against the installed files"; head -5 "$TMP/cc.err"
    fi
    expect "stock lua5.4 requires the installed asyncio.so" 0 "42" -- \
      env LUA_CPATH="$P/lib/lua/5.4/?.so" lua5.4 -e 'local a = require "asyncio"; print(a.run(function() return a.await(a.sleep(0.01, 42)) end))'
    expect "the installed alua runs" 0 "ok" -- "$P/bin/alua" -e "print(await(asyncio.sleep(0, 'ok')))"
  else
    echo "not ok - make install into a DESTDIR"; tail -5 "$TMP/install.log"
  fi
fi

# luarocks builds and installs the module for a stock Lua 5.4 from the rockspec
if [ "$BUILD_DIR" = build ] && command -v luarocks >/dev/null; then
  if luarocks --lua-version 5.4 make --tree "$TMP/rocks" alua-scm-1.rockspec >"$TMP/rock.log" 2>&1; then
    echo "ok - luarocks make alua-scm-1.rockspec"
    expect "stock lua5.4 requires the asyncio.so luarocks installed" 0 "42" -- \
      env LUA_CPATH="$TMP/rocks/lib/lua/5.4/?.so" lua5.4 -e 'local a = require "asyncio"; print(a.run(function() return a.await(a.sleep(0.01, 42)) end))'
  else
    echo "not ok - luarocks make alua-scm-1.rockspec"; tail -5 "$TMP/rock.log" | sed 's/^/  /'
  fi
fi
