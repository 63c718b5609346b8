#!/usr/bin/env bash
# clang-tidy (bug-finding families as errors, .clang-tidy) over first-party sources,
# using the compile database of a configured build (default build/asan).
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-build/asan}"
[ -f "$db/compile_commands.json" ] || { echo "tidy: configure $db first"; exit 2; }
find src apps -name '*.cc' -print0 | xargs -0 -P "$(nproc)" -n 4 clang-tidy -p "$db" --quiet
echo "tidy: ok"
