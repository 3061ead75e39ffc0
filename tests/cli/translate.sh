#!/usr/bin/env bash
# translate.sh — alua --translate: the plain-Lua text other tools (luacheck, LuaLS,
# formatters) read, with every line where it was.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

cat > "$TMP/kw.lua" <<'LUA'
#!/usr/bin/env alua
async function fetch(x)
  await asyncio.sleep(0)
  return x
end
local v = await fetch(1)
print(v)
LUA
expect "--translate prints the translation, '#' line kept" 0 '#!/usr/bin/env alua
fetch = async(function(x)
  await(await, asyncio.sleep)(0)
  return x
end, "fetch")
local v = await(await, fetch)(1)
print(v)' -- "$ALUA" --translate "$TMP/kw.lua"
expect "--translate keeps the number of lines" 0 "$(wc -l < "$TMP/kw.lua")" -- \
  bash -c "'$ALUA' --translate '$TMP/kw.lua' | wc -l"
expect "--translate - reads stdin" 0 "x = await(y)" -- bash -c "printf 'x = await y' | '$ALUA' --translate -"
expect "--translate without a file reads stdin" 0 "x = await(y)" -- bash -c "printf 'x = await y' | '$ALUA' --translate"
expect "--translate of plain Lua is the file itself" 0 "" -- \
  bash -c "'$ALUA' --translate tests/support.lua | cmp - tests/support.lua"
expect "--translate does not run the script" 0 "" -- bash -c "printf 'print(1)' | '$ALUA' --translate - >/dev/null"

expect "--translate of a missing file exits 1" 1 "" -- "$ALUA" --translate "$TMP/missing.lua"
stderr_has "--translate of a missing file: cannot open" "cannot open .*missing.lua: No such file"
printf 'local a = 1\nx = = await f()\n' > "$TMP/bad.lua"
expect "--translate of text Lua rejects: printed, exits 1" 1 $'local a = 1\nx = = await(await, f)()' -- \
  "$ALUA" --translate "$TMP/bad.lua"
stderr_has "--translate of text Lua rejects: Lua's message and line" "bad.lua:2: unexpected symbol near '='"
printf 'async function f(\n' > "$TMP/cut.lua"
expect "--translate of a cut-off async function exits 1" 1 '' -- "$ALUA" --translate "$TMP/cut.lua"
stderr_has "--translate of a cut-off async function: the transform's message" "cut.lua:2: .* near <eof>"
