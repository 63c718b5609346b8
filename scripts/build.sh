#!/usr/bin/env bash
# Configures and builds one preset (default: release), optionally only some targets.
# Usage: scripts/build.sh [PRESET [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
cmake --preset "$preset" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "build/$preset" -j "$(nproc)" "${targets[@]}"
