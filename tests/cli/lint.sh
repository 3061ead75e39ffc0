#!/usr/bin/env bash
# lint.sh — keyword-syntax code through luacheck (Debian's lua-check): the examples pass
# `alua --translate f.lua | luacheck --std +alua -` with the generated standard, which
# knows alua's globals and asyncio's fields; `make install` installs it with the LuaLS
# definitions.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
BUILD_DIR=$(dirname "$(dirname "$ALUA")")
RC=$BUILD_DIR/share/luacheckrc

if ! command -v luacheck >/dev/null; then
  echo "not ok - luacheck is not installed (apt-get install lua-check)"
  exit 0
fi
lint() { "$ALUA" --translate "$1" | luacheck --no-color --config "$RC" --std +alua -; }

for f in scripts/examples/*.lua; do
  out=$(lint "$f" 2>&1)
  if [ $? -eq 0 ]; then echo "ok - luacheck passes on $f"; else
    echo "not ok - luacheck passes on $f"
    echo "$out" | grep ':[0-9]*:' | head -5 | sed 's/^/  /'
  fi
done

printf 'await asyncio.slep(1)\nawait asyncio.fs.reed_file("x")\nprint(asyncio.TimeoutError:is(1), alua.syntax.translate(""))\n' > "$TMP/typo.lua"
lint "$TMP/typo.lua" > "$TMP/out" 2>&1
grep -q "stdin:1:.*undefined field 'slep' of global 'asyncio'" "$TMP/out" &&
  grep -q "stdin:2:.*undefined field 'fs.reed_file'" "$TMP/out" && [ "$(grep -c 'stdin:' "$TMP/out")" = 2 ] \
  && echo "ok - luacheck reports a misspelt asyncio field, and only that" \
  || { echo "not ok - luacheck reports a misspelt asyncio field, and only that"; sed 's/^/  /' "$TMP/out"; }
"$ALUA" --translate scripts/examples/hello.lua | luacheck --no-color --no-config - > "$TMP/out" 2>&1
[ $? -ne 0 ] && grep -q "undefined variable 'await'" "$TMP/out" \
  && echo "ok - without the standard, luacheck does not know await" \
  || echo "not ok - without the standard, luacheck does not know await"

make --no-print-directory -s install BUILD="$BUILD_DIR" DESTDIR="$TMP/inst" PREFIX=/usr >/dev/null 2>&1
for f in share/alua/luacheckrc share/alua/luals/asyncio.lua share/alua/luals/alua.lua; do
  [ -s "$TMP/inst/usr/$f" ] && echo "ok - make install installs $f" || echo "not ok - make install installs $f"
done
