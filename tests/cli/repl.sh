#!/usr/bin/env bash
# repl.sh — the REPL through a real pseudo-terminal (tests/cli/repl_pty.py).
cd "$(dirname "$0")/../.."
python3 tests/cli/repl_pty.py "${ALUA_BIN:-build/bin/alua}"
