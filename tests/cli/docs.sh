#!/usr/bin/env bash
# docs.sh — keeps the documentation honest: every fenced block of README.md and docs/*.md
# whose info string starts with "lua run" is run with alua, in a fresh empty directory,
# and must exit 0 with nothing on stderr; when an "output" block follows it (only blank
# lines between), stdout must be exactly that. Words after "run" relax the checks:
#   ```lua run exit=1 stderr      (expected exit status; stderr may be non-empty)
# Also: every scripts/examples/*.lua and docs/*.md the README names exists, and every
# public name of the asyncio module appears in docs/api.md.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
ROOT=$PWD
# shellcheck disable=SC2206
RUNNER=(${ALUA_RUNNER:-$ALUA})
# (a relative path to alua is made absolute: blocks run elsewhere; a command such as
# valgrind is left to PATH)
[[ ${RUNNER[0]} == */* && ${RUNNER[0]} != /* ]] && RUNNER[0]=$ROOT/${RUNNER[0]}
# a block's bound (a hang guard, not a measure): under valgrind on a busy machine
# (load 12) the TLS example of docs/api-tls.md took 63 s, 5 s of it CPU
if [[ ${RUNNER[0]} == valgrind ]]; then BLOCK_LIMIT=600; else BLOCK_LIMIT=60; fi

# ---- extract: $TMP/blocks/N.lua, N.out (expected stdout), N.info; the list in $TMP/list
mkdir -p "$TMP/blocks"
for doc in README.md docs/*.md; do
  [ -f "$doc" ] || continue
  awk -v doc="$doc" -v dir="$TMP/blocks" '
    /^```/ {
      if (!inside) {
        inside = 1; info = substr($0, 4); start = FNR; body = ""
        next
      }
      inside = 0
      if (info ~ /^lua run( |$)/) {
        n = COUNT_BASE + (++count)
        id = sprintf("%03d", n)
        printf "%s", body > (dir "/" id ".lua"); close(dir "/" id ".lua")
        printf "%s:%d %s\n", doc, start + 1, substr(info, 8) > (dir "/" id ".info"); close(dir "/" id ".info")
        pending = id
      } else if (info == "output" && pending != "") {
        printf "%s", body > (dir "/" pending ".out"); close(dir "/" pending ".out")
        pending = ""
      } else {
        pending = ""
      }
      next
    }
    inside { body = body $0 "\n"; next }
    /^[ \t]*$/ { next }
    { pending = "" }
  ' COUNT_BASE="$(find "$TMP/blocks" -name '*.lua' | wc -l)" "$doc"
done

# ---- run each block
total=0
for src in "$TMP"/blocks/*.lua; do
  [ -e "$src" ] || continue
  id=$(basename "$src" .lua)
  read -r where opts <"$TMP/blocks/$id.info"
  want_status=0
  allow_stderr=0
  for o in $opts; do
    case $o in
      exit=*) want_status=${o#exit=} ;;
      stderr) allow_stderr=1 ;;
    esac
  done
  work="$TMP/work.$id"
  mkdir -p "$work"
  out=$(cd "$work" && timeout -k 5 "$BLOCK_LIMIT" "${RUNNER[@]}" "$src" 2>"$TMP/stderr" </dev/null)
  status=$?
  problem=""
  [ "$status" = "$want_status" ] || problem="exit status $status (want $want_status)"
  if [ -z "$problem" ] && [ $allow_stderr = 0 ] && [ -s "$TMP/stderr" ]; then
    problem="unexpected stderr"
  fi
  if [ -z "$problem" ] && [ -f "$TMP/blocks/$id.out" ] && [ "$out" != "$(cat "$TMP/blocks/$id.out")" ]; then
    problem="stdout differs from the output block"
  fi
  total=$((total + 1))
  if [ -z "$problem" ]; then
    echo "ok - docs: $where runs${opts:+ ($opts)}"
  else
    echo "not ok - docs: $where: $problem"
    if [ -f "$TMP/blocks/$id.out" ]; then
      diff <(echo "$out") "$TMP/blocks/$id.out" | head -20 | sed 's/^/  /'
    fi
    head -10 "$TMP/stderr" | sed 's/^/  stderr: /'
  fi
done
if [ $total -ge 30 ]; then echo "ok - docs: $total runnable blocks found"; else
  echo "not ok - docs: only $total runnable blocks found (lost the \`\`\`lua run markers?)"
fi

# ---- what the README points at exists
missing=""
for f in $(grep -o 'scripts/examples/[a-z0-9_]*\.lua' README.md | sort -u) \
         $(grep -o '([a-z/]*[A-Za-z0-9_.-]*\.md)' README.md | tr -d '()' | sort -u); do
  [ -f "$f" ] || missing+=" $f"
done
for name in $(grep '^- `' README.md | grep -o '`[a-z_]*\.lua`' | tr -d '`' | sort -u); do
  [ -f "scripts/examples/$name" ] || missing+=" scripts/examples/$name"
done
if [ -z "$missing" ]; then echo "ok - docs: every file README.md names exists"; else
  echo "not ok - docs: README.md names missing files:$missing"
fi

# every example in scripts/examples is listed in the README (committed ones: work in
# progress in a shared tree is not held against the suite)
examples=$(git ls-files 'scripts/examples/*.lua' 2>/dev/null)
[ -n "$examples" ] || examples=$(ls scripts/examples/*.lua)
unlisted=""
for f in $examples; do
  grep -q "$(basename "$f")" README.md || unlisted+=" $(basename "$f")"
done
if [ -z "$unlisted" ]; then echo "ok - docs: README.md lists every example"; else
  echo "not ok - docs: examples missing from README.md:$unlisted"
fi

# ---- docs/api.md covers the module's public surface
names=$("$ALUA" -e '
  local t = {}
  for k in pairs(asyncio) do if not k:match("^_") then t[#t + 1] = k end end
  for k in pairs(asyncio.fs) do t[#t + 1] = "fs." .. k end
  table.sort(t)
  print(table.concat(t, " "))')
undocumented=""
for n in $names; do
  grep -q -- "$n" docs/api.md || undocumented+=" $n"
done
if [ -n "$names" ] && [ -z "$undocumented" ]; then echo "ok - docs: docs/api.md names every public asyncio function"; else
  echo "not ok - docs: not in docs/api.md:$undocumented"
fi

# ---- man/alua.1 names every option the usage message lists, and the variables read
man_missing=""
for opt in $("$ALUA" --bad-option 2>&1 | sed -n 's/^  \(-[-a-zA-Z]*\).*/\1/p'); do
  grep -q -- "^\.[BI]*  *$(sed 's/-/\\\\-/g' <<<"$opt")\b" man/alua.1 || man_missing+=" $opt"
done
for var in $(grep -ho 'getenv("[A-Z_0-9]*")' vm/*.c | sed 's/getenv("\(.*\)")/\1/' | sort -u); do
  grep -q "$var" man/alua.1 || man_missing+=" $var"
done
if [ -z "$man_missing" ]; then echo "ok - docs: man/alua.1 covers every option and environment variable"; else
  echo "not ok - docs: man/alua.1 lacks:$man_missing"
fi
