#!/usr/bin/env bash
# repl_piped.sh — alua -i with input that is not a terminal, as the stock lua command
# (lua.c with readline) does it: each prompt is written, then the line read after it;
# `=expr` prints the value; _PROMPT and _PROMPT2 (strings, or any value with __tostring,
# converted each time) replace "> " and ">> ". main.lua of the official suite checks these.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

# repl NAME WANT_STDOUT INPUT [alua options...]: the output after the two version lines
repl() {
  local name=$1 want=$2 input=$3
  shift 3
  expect "$name" 0 "$want" -- bash -c 'printf "%s" "$1" | "${@:2}" -i | tail -n +3' _ "$input" "$ALUA" "$@"
}

repl "a prompt, the line read, what it printed; a last prompt at the end of input" \
  $'> 1 + 2\n3\n> ' $'1 + 2\n'
repl "a last line without a newline is still read" $'> x = 5\n> x\n5\n> ' $'x = 5\nx'
repl "=expr prints the value (Lua 5.2's form)" $'> =1 + 2, "two"\n3\ttwo\n> ' $'=1 + 2, "two"\n'
repl "an incomplete chunk continues on >> lines" \
  $'> for i = 1, 2 do\n>> print(i)\n>> end\n1\n2\n> ' $'for i = 1, 2 do\nprint(i)\nend\n'
repl "_PROMPT and _PROMPT2 replace the prompts" $'$ if true then\n+ print(1) end\n1\n$ ' \
  $'if true then\nprint(1) end\n' -e "_PROMPT='\$ ' _PROMPT2='+ '"
repl "a prompt with __tostring is converted each time it is shown" $'1 --\n2a = 2\n3' \
  $' --\na = 2\n' -e "local C = 0; _PROMPT = setmetatable({}, {__tostring = function() C = C + 1; return C end})"
repl "empty prompts: only the lines and the results" $'(6*2-6) -- ===\n6\na =\n10\nprint(a)\n10' \
  $'(6*2-6) -- ===\na =\n10\nprint(a)\n' -e "_PROMPT='' _PROMPT2=''"
long=$(printf 'x%.0s' $(seq 6000))
repl "a line longer than any buffer" "> #'$long'"$'\n6000\n> ' "#'$long'"$'\n'
expect "an error in print is reported" 0 "" -- bash -c "echo 10 | '$ALUA' -e 'print=nil' -i >/dev/null"
stderr_has "an error in print: says so" "error calling 'print'"
# a line's error reaches the REPL's message handler before the scope's __close runs: the
# scope must still see its own cancellation and turn it into TimeoutError
repl "a timeout scope that fires at the prompt: TimeoutError, then the next prompt" \
  $'> do local t <close> = asyncio.timeout(0.01) await asyncio.sleep(10) end\n> ' \
  $'do local t <close> = asyncio.timeout(0.01) await asyncio.sleep(10) end\n'
stderr_has "a timeout scope that fires at the prompt: says TimeoutError" "^TimeoutError: timeout: the deadline passed"
