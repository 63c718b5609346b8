#!/usr/bin/env bash
# Group fan-out figures through a real sottod (bench/group_bench.cc): MEMBERS accounts
# registered at the wire level, every member device online over its own Noise connection,
# one group of all of them; member 0 group-sends MESSAGES real Sender Key ciphertexts one
# after the other. Measures the time until every member device has its copy (p50/p99),
# the server's durable ack, copies/s, and sottod's CPU (utime+stime from /proc/PID/stat)
# per delivered copy, acks and receipts included. sottod runs with --loops ${LOOPS:-1} and
# fsyncs every group commit (store.sync = true); all on this machine over loopback.
# Builds nothing: expects build/release/apps/sottod and build/release/bench/group_bench
# (override with SOTTOD, GROUP_BENCH). Prints the figures and writes JSON to
# ${OUT:-build/bench-group.json}.
#
# Usage: bench/group_bench.sh [--smoke]   (--smoke: 8 members, 3 messages; for CI)
# Knobs (env): MEMBERS (1024), MESSAGES (20), LOOPS (1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOTTOD=${SOTTOD:-$ROOT/build/release/apps/sottod}
GROUP_BENCH=${GROUP_BENCH:-$ROOT/build/release/bench/group_bench}
OUT=${OUT:-$ROOT/build/bench-group.json}
BENCH=group_bench
MEMBERS=${MEMBERS:-1024}
MESSAGES=${MESSAGES:-20}
LOOPS=${LOOPS:-1}
if [ "${1:-}" = "--smoke" ]; then MEMBERS=8; MESSAGES=3; fi

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools "$SOTTOD" "$GROUP_BENCH" jq
bench_init

# All members register from one address, and one connection sends back to back: the
# per-address handshake limit and the per-connection request limit are off here.
printf '[limits]\nrequest_rate_per_s = 0\nhandshake_rate_per_ip_per_s = 0\n' >"$WORK/sottod.toml"
start_sottod "$WORK/server" "$LOOPS" "$WORK/sottod.toml"
"$GROUP_BENCH" --server "127.0.0.1:$SERVER_PORT" --server-key "$SERVER_KEY" \
  --codes "$SERVER_CODES" --server-pid "$SERVER_PID" --members "$MEMBERS" \
  --messages "$MESSAGES" --json "$OUT"
log "wrote $OUT"
