#!/usr/bin/env bash
# Client SDK figures through a real sottod (bench/client_bench.cc): first-message latency
# to a new contact (lookup, bundle fetch, X3DH, send, server ack, decrypt and store on the
# recipient) and steady send -> arrival throughput and latency between two clients, each
# with its own SQLite store (synchronous=FULL). sottod runs with --loops 1; all on this
# machine over loopback. Builds nothing: expects build/release/apps/sottod and
# build/release/bench/client_bench (override with SOTTOD, CLIENT_BENCH). Prints the
# figures and writes JSON to ${OUT:-build/bench-client.json}.
#
# Usage: bench/client_bench.sh [--smoke]   (--smoke: 3 pairs, 100 messages; for CI)
# Knobs (env): PAIRS (20), MESSAGES (2000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOTTOD=${SOTTOD:-$ROOT/build/release/apps/sottod}
CLIENT_BENCH=${CLIENT_BENCH:-$ROOT/build/release/bench/client_bench}
OUT=${OUT:-$ROOT/build/bench-client.json}
BENCH=client_bench
PAIRS=${PAIRS:-20}
MESSAGES=${MESSAGES:-2000}
if [ "${1:-}" = "--smoke" ]; then PAIRS=3; MESSAGES=100; fi

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools "$SOTTOD" "$CLIENT_BENCH" jq
bench_init

# The per-connection request rate limit (50/s) would pace one sender; off here.
printf '[limits]\nrequest_rate_per_s = 0\n' >"$WORK/sottod.toml"
start_sottod "$WORK/server" 1 "$WORK/sottod.toml"
"$CLIENT_BENCH" --server "127.0.0.1:$SERVER_PORT" --server-key "$SERVER_KEY" \
  --codes "$SERVER_CODES" --pairs "$PAIRS" --messages "$MESSAGES" --json "$OUT"
log "wrote $OUT"
