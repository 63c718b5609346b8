#!/usr/bin/env bash
# Encrypted attachment figures through a real sottod with its media service
# (bench/media_bench.cc): send (encrypt + streaming upload) and receive (streaming
# download + verify + decrypt) throughput in MB/s (10^6 bytes/s, median of RUNS) for a
# file of MIB MiB of random bytes, and the peak RSS (VmHWM) of the sending and receiving
# client processes and of sottod. All on this machine over loopback. Builds nothing:
# expects build/release/apps/sottod and build/release/bench/media_bench (override with
# SOTTOD, MEDIA_BENCH). Prints the figures and writes JSON to ${OUT:-build/bench-media.json}.
#
# Usage: bench/media_bench.sh [--smoke]   (--smoke: a 4 MiB file, 1 run; for CI)
# Knobs (env): MIB (100), RUNS (3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOTTOD=${SOTTOD:-$ROOT/build/release/apps/sottod}
MEDIA_BENCH=${MEDIA_BENCH:-$ROOT/build/release/bench/media_bench}
OUT=${OUT:-$ROOT/build/bench-media.json}
BENCH=media_bench
MIB=${MIB:-100}
RUNS=${RUNS:-3}
if [ "${1:-}" = "--smoke" ]; then MIB=4; RUNS=1; fi

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools "$SOTTOD" "$MEDIA_BENCH" jq
bench_init

printf '[limits]\nrequest_rate_per_s = 0\n[media]\nlisten = "127.0.0.1:0"\n' >"$WORK/sottod.toml"
start_sottod "$WORK/server" 1 "$WORK/sottod.toml"
"$MEDIA_BENCH" --server "127.0.0.1:$SERVER_PORT" --server-key "$SERVER_KEY" \
  --codes "$SERVER_CODES" --server-pid "$SERVER_PID" --mib "$MIB" --runs "$RUNS" --json "$OUT"
log "wrote $OUT"
