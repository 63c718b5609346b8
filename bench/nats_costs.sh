#!/usr/bin/env bash
# JetStream primitive costs on a local 3-node nats-server cluster (bench/nats_costs.cc
# says what is measured): R3 file-store publish (sync closed loop, async saturation, async
# open loop), direct get, leader get, delete by sequence, KV update with revision, and the
# servers' memory per 10k subjects. The servers' store dirs go under ${BENCH_DIR:-/tmp};
# the filesystem is reported. Builds nothing: expects build/release/bench/nats_costs
# (override with NATS_COSTS). Prints the figures and writes ${OUT:-build/bench-nats.json}.
#
# Usage: bench/nats_costs.sh [--smoke]   (--smoke: small counts, for CI)
# Knobs (env): OPS (2000), ASYNC (20000), WINDOW (1000), SUBJECTS (10000), CONSUMERS (100),
# IDLE_S (5: seconds of idle CPU sampled without and with the consumers).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NATS_COSTS=${NATS_COSTS:-$ROOT/build/release/bench/nats_costs}
OUT=${OUT:-$ROOT/build/bench-nats.json}
BENCH=nats_costs
OPS=${OPS:-2000}
ASYNC=${ASYNC:-20000}
WINDOW=${WINDOW:-1000}
SUBJECTS=${SUBJECTS:-10000}
CONSUMERS=${CONSUMERS:-100}
IDLE_S=${IDLE_S:-5}
if [ "${1:-}" = "--smoke" ]; then OPS=100; ASYNC=2000; SUBJECTS=1000; CONSUMERS=10; IDLE_S=1; fi

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools "$NATS_COSTS"
command -v nats-server >/dev/null || PATH=$PATH:/usr/sbin
bench_init

FS=$(fs_type "$WORK")
if fs_is_volatile "$WORK"; then
  log "stores in $WORK on $FS: tmpfs/ramfs, so nothing here reaches a disk"
else
  log "stores in $WORK on $FS"
fi
log "nats-server $(nats-server --version | awk '{print $2}'), $(nproc) cores"
mkdir -p "$(dirname "$OUT")"
"$NATS_COSTS" --ops "$OPS" --async "$ASYNC" --window "$WINDOW" --subjects "$SUBJECTS" \
  --consumers "$CONSUMERS" --idle-s "$IDLE_S" \
  --dir "$WORK" --fs "$FS" --json "$OUT"
log "wrote $OUT"
