#!/usr/bin/env bash
# Messaging throughput and latency on this machine, end to end through real clients
# (apps/sotto_load.cc, --mode send-offline / send-online) against a real sottod:
#   1. durable path (store.sync = true): senders to offline receivers, so every message is
#      fsynced into a queue. An overload probe finds the most acked messages/s; a run at
#      half of that gives send -> ack latency, then the receivers reconnect and drain;
#   2. online path: receivers connected and acking in batches, senders acking the delivered
#      receipts. An overload probe finds the most deliveries/s of whole cycles (a sender
#      counts a message as in flight until its receipt is back); half of it gives send ->
#      ack and send -> delivery latency;
#   3. both paths again at a quarter of their maximum: at half of it the server may
#      already be saturated, since its cost per message rises as batches shrink;
#   4. the same durable probe with store.sync = false (what fsync costs), and the disk's
#      fsync cost (dd with O_DSYNC, and sottod's own commit time per group commit).
# Rates for the verdicts are whole cycles over the whole span (window start -> the last
# ack, online the last receipt), not what fits in the send window. Latencies count from
# each message's planned send time (sotto-load sends open loop on a fixed schedule), and a
# run that dropped planned sends (--max-in-flight cap, full write queue, sender behind)
# has no valid latency: the p99 verdict fails. The data directories' filesystem is
# printed (statfs); on tmpfs or ramfs an fsync writes nothing, so there the durable
# figures and verdict are refused (BENCH_DIR=/path/on/disk puts them elsewhere).
# Server CPU per message = sottod's utime+stime (/proc/PID/stat, read by sotto-load at the
# window's start and once every answer is in) / messages. Every run gets a fresh sottod
# (--loops 1, its own temp data dir and config) pinned to core 0, sotto-load to core 1.
# Builds nothing: expects build/release/apps/{sottod,sotto-load} (override with SOTTOD and
# SOTTO_LOAD). Prints a table; writes JSON to ${OUT:-build/bench-messaging.json}. Takes
# about 1.5 minutes; every process it starts is stopped on exit.
#
# Usage: bench/messaging_bench.sh [--smoke]
# --smoke (or SMOKE=1): small numbers, < 15 s; checks the tools end to end (messages
# acked, delivered, drained, no errors; a run whose in-flight cap drops sends is denied
# a latency figure) and exits non-zero if anything is off (for CI). It runs on tmpfs too.
#
# Knobs (env): CONNECTIONS (2000: half senders, half receivers), PROBE_SECONDS (5),
# HALF_SECONDS (10), QUARTER_SECONDS (5; 0 skips those runs), DURABLE_PROBE_RATE (100000 messages/s, an overload),
# ONLINE_PROBE_RATE (150000), MAX_IN_FLIGHT (64 unanswered sends per sender), ACK_BATCH (32),
# PAYLOAD (100 bytes), QUEUE_DEPTH (1000000, store.max_queue_depth).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOTTOD=${SOTTOD:-$ROOT/build/release/apps/sottod}
SOTTO_LOAD=${SOTTO_LOAD:-$ROOT/build/release/apps/sotto-load}
OUT=${OUT:-$ROOT/build/bench-messaging.json}
SMOKE=${SMOKE:-0}
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
  CONNECTIONS=${CONNECTIONS:-40}
  PROBE_SECONDS=${PROBE_SECONDS:-1}
  SMOKE_RATE=${SMOKE_RATE:-2000}
else
  CONNECTIONS=${CONNECTIONS:-2000}
  PROBE_SECONDS=${PROBE_SECONDS:-5}
fi
HALF_SECONDS=${HALF_SECONDS:-10}
QUARTER_SECONDS=${QUARTER_SECONDS:-5}
DURABLE_PROBE_RATE=${DURABLE_PROBE_RATE:-100000}
ONLINE_PROBE_RATE=${ONLINE_PROBE_RATE:-150000}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-64}
ACK_BATCH=${ACK_BATCH:-32}
PAYLOAD=${PAYLOAD:-100}
QUEUE_DEPTH=${QUEUE_DEPTH:-1000000}
# Targets of the issue.
TARGET_DURABLE=50000
TARGET_ONLINE=100000
TARGET_P99_US=5000

BENCH=messaging_bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
require_tools "$SOTTOD" "$SOTTO_LOAD" jq curl
bench_init

# Server and load generator each get their own core when there are two: otherwise the
# scheduler interleaves them and the figures measure that.
SERVER_PIN=()
CLIENT_PIN=()
# PIN=0 lets the scheduler place everything (then SOTTOD_LOOPS=2 lets sottod use both cores).
if [ "${PIN:-1}" = 1 ] && [ "$NPROC" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c 0)
  CLIENT_PIN=(taskset -c 1)
fi

# write_config SYNC: the server's config. Requests are not rate limited (senders send far
# more than 50/s each), queues are deep enough that none fills during a run.
write_config() {
  cat >"$WORK/sottod-$1.toml" <<EOF
[limits]
max_connections = 19900
request_rate_per_s = 0
handshake_rate_per_ip_per_s = 0

[store]
max_queue_depth = $QUEUE_DEPTH
sync = $1
EOF
}
write_config true
write_config false

# start_server NAME SYNC: a fresh sottod in WORK/NAME with the config for SYNC (see
# start_sottod in bench/lib.sh).
start_server() { start_sottod "$WORK/$1" "${SOTTOD_LOOPS:-1}" "$WORK/sottod-$2.toml"; }

# wait_ready FILE PID SECONDS: waits for sotto-load's "ready N" line.
wait_ready() {
  local i
  for i in $(seq $(($3 * 20))); do
    grep -q '^ready' "$1" 2>/dev/null && return
    kill -0 "$2" 2>/dev/null || return  # it ended early; its exit status tells why
    sleep 0.05
  done
  log "sotto-load not ready after $3 s"
  exit 1
}

# store_metrics: "commits requests commit_micros" from the server's /metrics.
store_metrics() {
  curl -s "http://127.0.0.1:$SERVER_HTTP/metrics" | awk '
    $1 == "sotto_store_commits_total" { c = $2 }
    $1 == "sotto_store_commit_requests_total" { r = $2 }
    $1 == "sotto_store_commit_micros_total" { m = $2 }
    END { print c + 0, r + 0, m + 0 }'
}

# run NAME MODE RATE SECONDS SYNC [sotto-load flags...]: one sotto-load run against a
# fresh sottod. Writes $WORK/NAME.json: sotto-load's summary plus "store" (the server's
# group-commit counters over ready -> exit) and "machine_other_cores".
run() {
  local name=$1 mode=$2 rate=$3 secs=$4 sync=$5
  shift 5
  start_server "$name" "$sync"
  local out="$WORK/$name" busy0 t0 server0 client0
  log "$name: $mode at $rate/s for $secs s, $CONNECTIONS connections (store.sync = $sync)"
  # Contention: what the rest of the machine used while this run went on.
  child_cpu
  client0=$CHILD_CPU
  busy0=$(busy_ticks)
  server0=$(cpu_ticks "$SERVER_PID")
  t0=$(now_ms)
  ${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} "$SOTTO_LOAD" --server "127.0.0.1:$SERVER_PORT" \
    --server-key "$SERVER_KEY" --codes "$SERVER_CODES" --mode "$mode" \
    --connections "$CONNECTIONS" --rate "$rate" --duration "$secs" \
    --max-in-flight "$MAX_IN_FLIGHT" --ack-batch "$ACK_BATCH" --payload "$PAYLOAD" \
    --server-pid "$SERVER_PID" --sources 127.0.0.2-127.0.0.9 --json "$out.json" "$@" \
    </dev/null >"$out.out" 2>"$out.err" &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$out.out" "$pid" 120
  read -r c0 r0 m0 <<<"$(store_metrics)"
  if ! wait "$pid"; then
    log "sotto-load ($name) failed:"
    cat "$out.err" >&2
    exit 1
  fi
  read -r c1 r1 m1 <<<"$(store_metrics)"
  child_cpu
  local other
  other=$(calc "(($(busy_ticks) - $busy0 - $(cpu_ticks "$SERVER_PID") + $server0) / $CLK_TCK - ($CHILD_CPU - $client0)) * 1000 / ($(now_ms) - $t0)" 2)
  stop_pid "$SERVER_PID"
  jq --argjson c "$((c1 - c0))" --argjson r "$((r1 - r0))" --argjson m "$((m1 - m0))" \
    --argjson other "$other" \
    '. + {store: {commits: $c, requests: $r, commit_micros: $m}, machine_other_cores: $other}' \
    "$out.json" >"$out.full.json"
  mv "$out.full.json" "$out.json"
}

# Figures of a run's JSON (FILE, then a jq path).
fig() { jq -r "$2" "$WORK/$1.json"; }
per_commit() { jq -r 'if .store.commits > 0 then (.messaging.acked / .store.commits * 10 | round / 10) else 0 end' "$WORK/$1.json"; }
req_per_commit() { jq -r 'if .store.commits > 0 then (.store.requests / .store.commits * 10 | round / 10) else 0 end' "$WORK/$1.json"; }
commit_us() { jq -r 'if .store.commits > 0 then (.store.commit_micros / .store.commits | round) else 0 end' "$WORK/$1.json"; }
errors() { jq -r '.messaging.send_errors + .messaging.bad_envelopes + .failures.dropped + .failures.protocol + .messaging.drain.lost' "$WORK/$1.json"; }
client_pct() { jq -r 'if .messaging.window_s > 0 then (.messaging.client_cpu_window_s / .messaging.window_s * 100 | round) else 0 end' "$WORK/$1.json"; }
client_us() { jq -r 'if .messaging.acked > 0 and .messaging.client_cpu_span_s != null then (.messaging.client_cpu_span_s * 1e7 / .messaging.acked | round / 10) else "?" end' "$WORK/$1.json"; }
wait_pct() { jq -r --arg who "$2" '.messaging as $m | ($m[$who + "_runqueue_wait_s"]) as $w | if $w != null and $m.span_s != null and $m.span_s > 0 then ($w / $m.span_s * 100 | round | tostring) + "%" else "?" end' "$WORK/$1.json"; }
met() { if [ "$1" = 1 ]; then echo met; else echo "not met"; fi; }
# "valid", or why a run's latency is not: planned sends it did not send.
latency_state() { jq -r 'if .latency_valid then "valid" else "NOT VALID: \(.dropped_sends.in_flight) dropped by the in-flight cap, \(.dropped_sends.write_queue) by the write queue, \(.dropped_sends.no_sender) without a sender, \(.dropped_sends.behind) behind" end' "$WORK/$1.json"; }
valid() { jq -r 'if .latency_valid then 1 else 0 end' "$WORK/$1.json"; }

# fsync cost of the disk under the data directories: 4 KiB writes with O_DSYNC.
fsync_us() {
  local n=${1:-500} secs
  secs=$(LC_ALL=C dd if=/dev/zero of="$WORK/fsync.bin" bs=4k count="$n" oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i - 1) }')
  rm -f "$WORK/fsync.bin"
  calc "${secs:-0} * 1000000 / $n" 0
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Where the servers' data (RocksDB, its WAL and fsyncs) lives.
DATA_FS=$(fs_type "$WORK")
DATA_VOLATILE=false
fs_is_volatile "$WORK" && DATA_VOLATILE=true
log "data dirs in $WORK: $DATA_FS"

# ---- Smoke: the tools end to end, small and quick ------------------------------------------
if [ "$SMOKE" = 1 ]; then
  run smoke-offline send-offline "$SMOKE_RATE" "$PROBE_SECONDS" true --drain
  run smoke-online send-online "$SMOKE_RATE" "$PROBE_SECONDS" true
  # One in flight per sender at a rate far past one round trip each: the cap must drop
  # planned sends, and such a run must be denied a latency figure.
  MAX_IN_FLIGHT=1 run smoke-capped send-offline "$((SMOKE_RATE * 100))" "$PROBE_SECONDS" true
  FAIL=0
  check() {  # check NAME JQ-CONDITION WHAT
    if [ "$(jq -r "$2" "$WORK/$1.json")" != true ]; then
      log "FAIL $1: $3"
      FAIL=1
    fi
  }
  for r in smoke-offline smoke-online; do
    check "$r" '.setup_complete' "not every connection registered"
    check "$r" '.messaging.acked > 0' "no message acked"
    check "$r" '.messaging.send_errors == 0' "sends answered with errors: $(jq -c .messaging.errors "$WORK/$r.json")"
    check "$r" '.messaging.bad_envelopes == 0 and .failures.protocol == 0 and .failures.dropped == 0' "protocol errors or dropped connections"
  done
  check smoke-offline '.messaging.drain.deliveries > 0 and .messaging.drain.missing == 0 and .messaging.drain.lost == 0' "the drain lost messages or receivers"
  check smoke-online '.messaging.deliveries > 0 and .messaging.undelivered == 0 and .messaging.receipts > 0' "messages not delivered or no receipts"
  check smoke-online '.messaging.cycles == .messaging.acked and .messaging.cycles_per_s > 0' "whole cycles not counted"
  check smoke-capped '.dropped_sends.in_flight > 0 and .latency_valid == false' "sends dropped by the in-flight cap did not invalidate the latency"
  printf "smoke: offline %s acked, %s drained (%s/s); online %s acked, %s delivered, %s receipts, %s whole cycles/s; send->ack p99 %s us (latency %s)\n" \
    "$(fig smoke-offline .messaging.acked)" "$(fig smoke-offline .messaging.drain.deliveries)" \
    "$(fig smoke-offline .messaging.drain.per_s)" "$(fig smoke-online .messaging.acked)" \
    "$(fig smoke-online .messaging.deliveries)" "$(fig smoke-online .messaging.receipts)" \
    "$(fig smoke-online '.messaging.cycles_per_s | round')" \
    "$(fig smoke-online .messaging.ack_latency_us.p99)" "$(latency_state smoke-online)"
  printf "smoke: capped run dropped %s planned sends (in-flight cap): latency %s\n" \
    "$(fig smoke-capped .dropped_sends.in_flight)" "$(latency_state smoke-capped)"
  if [ "$DATA_VOLATILE" = true ]; then
    printf "smoke: data on %s: no durable figure can be given here (an fsync on tmpfs writes nothing)\n" "$DATA_FS"
  else
    printf "smoke: data on %s\n" "$DATA_FS"
  fi
  mkdir -p "$(dirname "$OUT")"
  jq -n --slurpfile off "$WORK/smoke-offline.json" --slurpfile on "$WORK/smoke-online.json" \
    --slurpfile capped "$WORK/smoke-capped.json" --arg fs "$DATA_FS" \
    --argjson volatile "$DATA_VOLATILE" \
    '{smoke: true, data_fs: $fs, data_fs_volatile: $volatile, offline: $off[0], online: $on[0],
      capped: $capped[0]}' >"$OUT"
  [ "$FAIL" = 0 ] && log "smoke ok; wrote $OUT" || { log "smoke FAILED"; exit 1; }
  exit 0
fi

# ---- 1. Durable path -------------------------------------------------------------------------
run durable-probe send-offline "$DURABLE_PROBE_RATE" "$PROBE_SECONDS" true
DURABLE_MAX=$(fig durable-probe .messaging.cycles_per_s)
DURABLE_HALF=$(calc "$DURABLE_MAX / 2" 0)
run durable-half send-offline "$DURABLE_HALF" "$HALF_SECONDS" true --drain

# ---- 2. Online path --------------------------------------------------------------------------
run online-probe send-online "$ONLINE_PROBE_RATE" "$PROBE_SECONDS" true
ONLINE_MAX=$(fig online-probe .messaging.cycles_per_s)
ONLINE_HALF=$(calc "$ONLINE_MAX / 2" 0)
run online-half send-online "$ONLINE_HALF" "$HALF_SECONDS" true

# ---- 3. A quarter of the maximum ---------------------------------------------------------------
RUNS="durable-probe durable-half online-probe online-half"
if [ "$QUARTER_SECONDS" != 0 ]; then
  run durable-quarter send-offline "$(calc "$DURABLE_MAX / 4" 0)" "$QUARTER_SECONDS" true
  run online-quarter send-online "$(calc "$ONLINE_MAX / 4" 0)" "$QUARTER_SECONDS" true
  RUNS="$RUNS durable-quarter online-quarter"
fi

# ---- 4. What fsync costs -----------------------------------------------------------------------
RUNS="$RUNS nosync-probe"
run nosync-probe send-offline "$DURABLE_PROBE_RATE" "$PROBE_SECONDS" false
if [ "$DATA_VOLATILE" = true ]; then
  FSYNC_DD_US=null  # an fsync on tmpfs measures nothing
else
  FSYNC_DD_US=$(fsync_us 500)
fi

# ---- Report ----------------------------------------------------------------------------------
DURABLE_OK=$(awk "BEGIN { print ($DURABLE_MAX >= $TARGET_DURABLE) }")
[ "$DATA_VOLATILE" = true ] && DURABLE_OK=0
ONLINE_OK=$(awk "BEGIN { print ($ONLINE_MAX >= $TARGET_ONLINE) }")
D_P99=$(fig durable-half .messaging.ack_latency_us.p99)
O_P99_ACK=$(fig online-half .messaging.ack_latency_us.p99)
O_P99_DEL=$(fig online-half .messaging.delivery_latency_us.p99)
P99_OK=$(awk "BEGIN { print ($D_P99 < $TARGET_P99_US && $O_P99_ACK < $TARGET_P99_US && $O_P99_DEL < $TARGET_P99_US) }")
# A run that dropped planned sends has no valid latency: the verdict fails.
LATENCY_VALID=$(($(valid durable-half) * $(valid online-half)))
[ "$LATENCY_VALID" = 1 ] || P99_OK=0
row() {  # row LABEL RUN
  printf "   %-26s %9s %9s %9s %9s %10s %17s %17s %8s %8s %7s %10s %6s\n" "$1" \
    "$(fig "$2" '.messaging.rate_target | round')" "$(fig "$2" '.messaging.acked_per_s | round')" \
    "$(fig "$2" '.messaging.deliveries_per_s | round')" "$(fig "$2" '.messaging.receipts_per_s | round')" \
    "$(fig "$2" '.messaging.server_cpu_us_per_acked // "?" | if type == "number" then (. * 10 | round / 10) else . end')" \
    "$(fig "$2" '"\(.messaging.ack_latency_us.p50 | round)/\(.messaging.ack_latency_us.p99 | round)"')" \
    "$(fig "$2" 'if .messaging.deliveries > 0 then "\(.messaging.delivery_latency_us.p50 | round)/\(.messaging.delivery_latency_us.p99 | round)" else "-" end')" \
    "$(per_commit "$2")" "$(req_per_commit "$2")" "$(client_pct "$2")%" "$(client_us "$2")" "$(errors "$2")"
}
{
  echo
  echo "Messaging bench on $(hostname): $NPROC cores, kernel $(uname -r); load average at start $LOAD_AT_START"
  echo "sottod --loops ${SOTTOD_LOOPS:-1}$([ "${#SERVER_PIN[@]}" -gt 0 ] && echo " on core 0, sotto-load on core 1" || echo ", unpinned"); $CONNECTIONS connections ($((CONNECTIONS / 2)) sender/receiver pairs),"
  echo "$PAYLOAD-byte payloads, DeliveryAck every $ACK_BATCH envelopes or read burst, at most $MAX_IN_FLIGHT messages in flight per sender"
  echo "(until answered; online until receipted)."
  echo "Data dirs (RocksDB, WAL, fsyncs) on $DATA_FS in $(dirname "$WORK")$([ "$DATA_VOLATILE" = true ] && echo ": tmpfs/ramfs, so no durable figure (an fsync there writes nothing)")."
  echo "Other processes kept busy (cores, average, rows in order):$(for r in $RUNS; do printf ' %s' "$(fig "$r" .machine_other_cores)"; done)"
  echo "Time runnable but waiting for a CPU, % of each run's span (rows in order): sotto-load$(for r in $RUNS; do printf ' %s' "$(wait_pct "$r" client)"; done);"
  echo "sottod's threads (which also wait for each other on their one core)$(for r in $RUNS; do printf ' %s' "$(wait_pct "$r" server)"; done)."
  echo
  printf "   %-26s %9s %9s %9s %9s %10s %17s %17s %8s %8s %7s %10s %6s\n" run "target/s" "acked/s" "deliv/s" "rcpt/s" \
    "srv us/msg" "ack p50/p99 us" "deliv p50/p99 us" "msg/cmt" "req/cmt" "client" "cli us/msg" errors
  row "durable probe, sync" durable-probe
  row "durable half, sync" durable-half
  row "online probe" online-probe
  row "online half" online-half
  if [ "$QUARTER_SECONDS" != 0 ]; then
    row "durable quarter, sync" durable-quarter
    row "online quarter" online-quarter
  fi
  row "durable probe, sync=false" nosync-probe
  echo "   srv us/msg = sottod CPU (window start -> every answer in) / acked messages; online, every"
  echo "   answer means every delivery and receipt too, so it is per whole cycle (= per delivery)."
  echo "   msg/cmt, req/cmt = acked messages and queue write requests (sends, acks) per group commit (one fsync each)."
  echo "   client = sotto-load's CPU in the window, % of its core; cli us/msg = its CPU per acked message."
  echo
  echo "   Verdict rates are whole cycles over the whole span (window start -> the last ack, online the last receipt):"
  echo "   durable probe $(fig durable-probe .messaging.cycles) in $(fig durable-probe .messaging.span_s) s = $(fig durable-probe '.messaging.cycles_per_s | round')/s; online probe (send, delivery, ack, receipt) $(fig online-probe .messaging.cycles) in $(fig online-probe .messaging.span_s) s = $(fig online-probe '.messaging.cycles_per_s | round')/s"
  echo "   (acked/s, deliv/s above count the window only, while the pipeline of in-flight messages still fills)."
  echo "   Latencies count from each message's planned send time. Latency at half load: durable $(latency_state durable-half); online $(latency_state online-half)."
  echo "   Drain after the durable half run: $(fig durable-half .messaging.drain.deliveries) messages in $(fig durable-half .messaging.drain.seconds) s = $(fig durable-half '.messaging.drain.per_s | round') deliveries/s (reconnect included), missing $(fig durable-half .messaging.drain.missing), server $(fig durable-half '.messaging.drain.server_cpu_us_per_delivery // "?"') us/delivery."
  echo "   fsync on $DATA_FS: dd 4 KiB O_DSYNC writes $([ "$DATA_VOLATILE" = true ] && echo "not measured (tmpfs)" || echo "$FSYNC_DD_US us each"); sottod group commit (write + $([ "$DATA_VOLATILE" = true ] && echo "an fsync that writes nothing" || echo fsync)) $(commit_us durable-half) us at half load, $(commit_us durable-probe) us in the probe ($(commit_us nosync-probe) us without fsync)."
  echo
  printf "   %-52s %14s  %s\n" "issue target" measured verdict
  if [ "$DATA_VOLATILE" = true ]; then
    printf "   %-52s %14s  %s\n" "durable messages/s >= $TARGET_DURABLE" "-" "no figure: data on tmpfs, fsync measures nothing"
  else
    printf "   %-52s %14s  %s\n" "durable messages/s >= $TARGET_DURABLE (on ${DATA_FS%% *})" "$(calc "$DURABLE_MAX" 0)" "$(met "$DURABLE_OK")"
  fi
  printf "   %-52s %14s  %s\n" "online whole cycles/s end to end >= $TARGET_ONLINE" "$(calc "$ONLINE_MAX" 0)" "$(met "$ONLINE_OK")"
  printf "   %-52s %14s  %s\n" "p99 < 5 ms at half load (durable ack / online ack, delivery)" "$(calc "$D_P99 / 1000" 2)/$(calc "$O_P99_ACK / 1000" 2)/$(calc "$O_P99_DEL / 1000" 2) ms" "$(met "$P99_OK")$([ "$LATENCY_VALID" = 1 ] || echo ": planned sends were dropped, latency not valid")"
} | tee "$WORK/table.txt"

mkdir -p "$(dirname "$OUT")"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$(hostname)" --argjson cores "$NPROC" \
  --arg kernel "$(uname -r)" --arg load "$LOAD_AT_START" --argjson fsync "$FSYNC_DD_US" \
  --arg fs "$DATA_FS" --argjson volatile "$DATA_VOLATILE" --argjson lvalid "$LATENCY_VALID" \
  --argjson dmax "$DURABLE_MAX" --argjson omax "$ONLINE_MAX" \
  --argjson dok "$DURABLE_OK" --argjson ook "$ONLINE_OK" --argjson pok "$P99_OK" \
  --slurpfile dp "$WORK/durable-probe.json" --slurpfile dh "$WORK/durable-half.json" \
  --slurpfile op "$WORK/online-probe.json" --slurpfile oh "$WORK/online-half.json" \
  --slurpfile np "$WORK/nosync-probe.json" \
  --argjson dq "$(cat "$WORK/durable-quarter.json" 2>/dev/null || echo null)" \
  --argjson oq "$(cat "$WORK/online-quarter.json" 2>/dev/null || echo null)" \
  '{date: $date, host: $host, cores: $cores, kernel: $kernel, loadavg_at_start: $load,
    fsync_dd_us: $fsync, data_fs: $fs, data_fs_volatile: $volatile,
    targets: {durable_per_s: {target: 50000, measured: (if $volatile then null else $dmax end),
                              met: ($dok == 1), whole_cycles: true},
              online_deliveries_per_s: {target: 100000, measured: $omax, met: ($ook == 1),
                                        whole_cycles: true},
              p99_half_load_under_5ms: {met: ($pok == 1), latency_valid: ($lvalid == 1)}},
    runs: {durable_probe: $dp[0], durable_half: $dh[0], online_probe: $op[0],
           online_half: $oh[0], durable_quarter: $dq, online_quarter: $oq,
           nosync_probe: $np[0]}}' >"$OUT"
log "wrote $OUT"
