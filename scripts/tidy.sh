#!/usr/bin/env bash
# clang-tidy (bug-finding families as errors, .clang-tidy) over first-party sources,
# using the compile database of a configured build (default build/asan).
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-build/asan}"
[ -f "$db/compile_commands.json" ] || { echo "tidy: configure $db first"; exit 2; }
# clang-tidy counts the (suppressed) warnings of system headers on stderr; drop that noise.
find src apps -name '*.cc' -print0 |
  xargs -0 -P "$(nproc)" -n 4 clang-tidy -p "$db" --quiet 2> >(grep -v 'warnings generated' >&2)
echo "tidy: ok"
