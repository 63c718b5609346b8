#!/usr/bin/env bash
# Builds the release preset and runs the benchmarks with their default repeat counts,
# printing the figures and writing build/release/bench-signal.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release >/dev/null
build/release/bench/signal_bench --json build/release/bench-signal.json "$@"
