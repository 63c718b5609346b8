#!/usr/bin/env bash
# Gateway capacity on this machine, measured with real clients (apps/sotto_load.cc) against
# a real sottod over 127.0.0.x:
#   1. memory per idle, registered connection (server RSS; kernel Slab and TCP pages),
#      and a capacity model from it;
#   2. handshakes per second and per server CPU-second (= per core), IK and XX;
#   3. echo round trips: the highest rate one loop sustains, then latency at half of it
#      (from each echo's planned send time; a run that could not send every planned echo
#      says its latency is not valid).
# Builds nothing: expects build/release/apps/{sottod,sotto-load} (override with SOTTOD and
# SOTTO_LOAD). Prints a table; writes JSON to ${OUT:-build/bench-gateway.json}. Runs in
# about a minute. Every process it starts is stopped on exit. Rates need a quiet machine
# (the table says how busy the rest of it was); per-CPU-second figures are steadier.
#
# Knobs (env): MEM_STEPS ("5000 10000 19000"), HS_SECONDS (10), PING_CONNECTIONS (1000),
# PING_SECONDS (10), PING_PROBE_RATE (400000 requests/s, the overload used to find the max).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOTTOD=${SOTTOD:-$ROOT/build/release/apps/sottod}
SOTTO_LOAD=${SOTTO_LOAD:-$ROOT/build/release/apps/sotto-load}
OUT=${OUT:-$ROOT/build/bench-gateway.json}
MEM_STEPS=${MEM_STEPS:-"5000 10000 19000"}
HS_SECONDS=${HS_SECONDS:-10}
PING_CONNECTIONS=${PING_CONNECTIONS:-1000}
PING_SECONDS=${PING_SECONDS:-10}
PING_PROBE_RATE=${PING_PROBE_RATE:-400000}
PER_PROCESS=9500  # connections per sotto-load process (each has a 20,000 open-file cap)

BENCH=gateway_bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
require_tools "$SOTTOD" "$SOTTO_LOAD" jq
bench_init

PAGE=$(getconf PAGESIZE)
cat >"$WORK/sottod.toml" <<'EOF'
[limits]
max_connections = 19900
request_rate_per_s = 0
handshake_rate_per_ip_per_s = 0
EOF

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
slab_kb() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
# Contention: CPU time the rest of the machine used while a section ran (other sessions'
# work competes with sottod and sotto-load, and with autogroup scheduling nice does not
# keep it away). busy_ticks: machine-wide busy time; child_cpu: this script's waited-for
# children (every sottod and sotto-load of the section is waited for before it ends).
# (busy_ticks and child_cpu: bench/lib.sh.)
section_start() { child_cpu; S_CHILD=$CHILD_CPU S_BUSY=$(busy_ticks) S_T=$(now_ms); }
# Sets OTHER: cores the rest of the machine kept busy on average since section_start.
section_other() {
  child_cpu
  OTHER=$(calc "(($(busy_ticks) - $S_BUSY) / $CLK_TCK - ($CHILD_CPU - $S_CHILD)) * 1000 / ($(now_ms) - $S_T)" 2)
}
tcp_field() { awk -v f="$1" '/^TCP:/ { for (i = 2; i < NF; i++) if ($i == f) print $(i + 1) }' /proc/net/sockstat; }

# start_server NAME LOOPS: a fresh sottod in WORK/NAME (see start_sottod in bench/lib.sh).
start_server() { start_sottod "$WORK/$1" "$2" "$WORK/sottod.toml"; }

# wait_ready FILE PID SECONDS: the count from sotto-load's "ready N" line.
wait_ready() {
  local i
  for i in $(seq $(($3 * 10))); do
    if grep -q '^ready' "$1" 2>/dev/null; then awk '/^ready/ { print $2; exit }' "$1"; return; fi
    kill -0 "$2" 2>/dev/null || { log "sotto-load exited before it was ready"; exit 1; }
    sleep 0.1
  done
  log "sotto-load not ready after $3 s"
  exit 1
}

metric() { curl -s "http://127.0.0.1:$SERVER_HTTP/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# ---- 1. Memory per idle, registered connection ------------------------------------------
log "memory: sottod --loops $NPROC, idle IK connections held by sotto-load processes"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
section_start
start_server mem "$NPROC"
sleep 1
RSS0=$(rss_kb "$SERVER_PID")
SLAB0=$(slab_kb)
TCPMEM0=$(tcp_field mem)
LOADERS=()
WANTS=()
HELD=0
MEM_ROWS=()
for N in $MEM_STEPS; do
  NEED=$((N - HELD))
  while [ "$NEED" -gt 0 ]; do
    TAKE=$((NEED < PER_PROCESS ? NEED : PER_PROCESS))
    i=${#LOADERS[@]}
    SRC="127.0.0.$((2 + 4 * i))-127.0.0.$((5 + 4 * i))"
    "$SOTTO_LOAD" --server "127.0.0.1:$SERVER_PORT" --server-key "$SERVER_KEY" --mode idle \
      --codes "$SERVER_CODES" --connections "$TAKE" --sources "$SRC" --hold 600 --json "$WORK/idle-$i.json" \
      </dev/null >"$WORK/idle-$i.out" 2>"$WORK/idle-$i.err" &
    LOADERS+=($!)
    PIDS+=($!)
    WANTS+=("$TAKE")
    HELD=$((HELD + TAKE))
    NEED=$((NEED - TAKE))
  done
  for i in "${!LOADERS[@]}"; do
    GOT=$(wait_ready "$WORK/idle-$i.out" "${LOADERS[$i]}" 180)
    [ "$GOT" = "${WANTS[$i]}" ] || { log "sotto-load $i holds $GOT of ${WANTS[$i]} connections"; cat "$WORK/idle-$i.err" >&2; exit 1; }
  done
  sleep 2  # let the server settle (reaping, allocator)
  RSS=$(rss_kb "$SERVER_PID")
  SLAB=$(slab_kb)
  TCPMEM=$(tcp_field mem)
  OPEN=$(metric sotto_connections_open)
  CLIENT_KB=0
  for p in "${LOADERS[@]}"; do CLIENT_KB=$((CLIENT_KB + $(rss_kb "$p"))); done
  USER_B=$(calc "($RSS - $RSS0) * 1024 / $N" 0)
  SLAB_B=$(calc "($SLAB - $SLAB0) * 1024 / (2 * $N)" 0)
  TCPMEM_B=$(calc "($TCPMEM - $TCPMEM0) * $PAGE / (2 * $N)" 0)
  CLIENT_B=$(calc "$CLIENT_KB * 1024 / $N" 0)
  log "  $N connections (server reports ${OPEN:-?} open): server RSS $RSS0 -> $RSS kB"
  MEM_ROWS+=("$N $RSS $USER_B $SLAB $SLAB_B $TCPMEM $TCPMEM_B $CLIENT_B ${OPEN:-null}")
done
for p in "${LOADERS[@]}"; do stop_pid "$p"; done
stop_pid "$SERVER_PID"
section_other
MEM_OTHER=$OTHER

# The model uses the largest step.
read -r MN _ MUSER _ MSLAB _ _ _ _ <<<"${MEM_ROWS[-1]}"
GIB=1073741824
PER_GB_USER=$(calc "$GIB / $MUSER" 0)
PER_GB_ALL=$(calc "$GIB / ($MUSER + $MSLAB)" 0)
PER_64_USER=$(calc "64 * $GIB / $MUSER" 0)
PER_64_ALL=$(calc "64 * $GIB / ($MUSER + $MSLAB)" 0)

# ---- 2. Handshakes per second and per core ----------------------------------------------
hs_run() {  # hs_run KIND SOURCES: sets H_* from the JSON and the server's CPU
  local kind=$1 key=()
  [ "$kind" = IK ] && key=(--server-key "$SERVER_KEY")
  local t0 t1 j="$WORK/hs-$kind.json"
  t0=$(cpu_ticks "$SERVER_PID")
  "$SOTTO_LOAD" --server "127.0.0.1:$SERVER_PORT" "${key[@]}" --mode handshake \
    --duration "$HS_SECONDS" --concurrency 64 --sources "$2" --json "$j" \
    </dev/null >/dev/null 2>"$WORK/hs-$kind.err" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid" || { log "sotto-load --mode handshake ($kind) failed"; cat "$WORK/hs-$kind.err" >&2; exit 1; }
  t1=$(cpu_ticks "$SERVER_PID")
  H_CPU=$(calc "($t1 - $t0) / $CLK_TCK" 2)
  H_RATE=$(jq .handshakes_per_s "$j")
  H_CORE=$(calc "$(jq .handshakes "$j") / $H_CPU" 0)
  H_FAIL=$(jq '.failures.connect + .failures.handshake + .failures.timeout' "$j")
  H_CCPU=$(jq .client_cpu_s "$j")
  H_P50=$(jq .handshake_latency_us.p50 "$j")
  H_P99=$(jq .handshake_latency_us.p99 "$j")
}
log "handshakes: sottod --loops 1, ${HS_SECONDS} s each, 64 in flight"
section_start
start_server hs 1
hs_run XX 127.0.0.32-127.0.0.39
XX_RATE=$H_RATE XX_CORE=$H_CORE XX_FAIL=$H_FAIL XX_CPU=$H_CPU XX_CCPU=$H_CCPU XX_P50=$H_P50 XX_P99=$H_P99
hs_run IK 127.0.0.40-127.0.0.47
IK_RATE=$H_RATE IK_CORE=$H_CORE IK_FAIL=$H_FAIL IK_CPU=$H_CPU IK_CCPU=$H_CCPU IK_P50=$H_P50 IK_P99=$H_P99
HS_SERVER_XX=$(metric 'sotto_handshakes_total{pattern="XX"}')
HS_SERVER_IK=$(metric 'sotto_handshakes_total{pattern="IK"}')
stop_pid "$SERVER_PID"
section_other
HS_OTHER=$OTHER

# ---- 3. Echo round trips ----------------------------------------------------------------
ping_run() {  # ping_run NAME RATE SECONDS -> sets P_* from the JSON and the server's CPU
  local out="$WORK/ping-$1"
  ${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} "$SOTTO_LOAD" --server "127.0.0.1:$SERVER_PORT" \
    --server-key "$SERVER_KEY" --mode ping --codes "$SERVER_CODES" \
    --connections "$PING_CONNECTIONS" --rate "$2" --duration "$3" --sources 127.0.0.48-127.0.0.55 \
    --json "$out.json" </dev/null >"$out.out" 2>"$out.err" &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$out.out" "$pid" 120 >/dev/null
  local t0 t1
  t0=$(cpu_ticks "$SERVER_PID")
  wait "$pid" || { log "sotto-load --mode ping failed"; cat "$out.err" >&2; exit 1; }
  t1=$(cpu_ticks "$SERVER_PID")
  P_CPU=$(calc "($t1 - $t0) / $CLK_TCK" 2)
  P_RATE=$(jq .achieved_per_s "$out.json")
  P_SENT=$(jq .sent_per_s "$out.json")
  P_OK=$(jq .responses_ok "$out.json")
  P_ERR=$(jq '.response_errors + .lost + .sends_skipped + .failures.dropped' "$out.json")
  P_CCPU=$(jq .client_cpu_s "$out.json")
  P_US=$(calc "$P_CPU * 1000000 / $P_OK" 2)
  P_P50=$(jq .latency_us.p50 "$out.json")
  P_P99=$(jq .latency_us.p99 "$out.json")
  P_P999=$(jq .latency_us.p999 "$out.json")
  P_MAX=$(jq .latency_us.max "$out.json")
  P_VALID=$(jq -r 'if .latency_valid then "valid" else "NOT VALID (\(.dropped_sends.write_queue) planned echoes dropped by the write queue, \(.dropped_sends.behind) behind)" end' "$out.json")
}
log "round trips: sottod --loops 1, $PING_CONNECTIONS connections, 16-byte echoes"
# Server and load generator each get their own core when there are two: otherwise the
# scheduler interleaves them on both and the latency tail measures that.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c 0)
  CLIENT_PIN=(taskset -c 1)
fi
section_start
start_server ping 1
ping_run probe "$PING_PROBE_RATE" 5
MAX_RATE=$P_RATE MAX_SENT=$P_SENT MAX_US=$P_US MAX_CCPU=$P_CCPU MAX_ERR=$P_ERR MAX_P50=$P_P50 MAX_P99=$P_P99
HALF=$(calc "$MAX_RATE / 2" 0)
ping_run half "$HALF" "$PING_SECONDS"
stop_pid "$SERVER_PID"
section_other
PING_OTHER=$OTHER

# ---- Report -----------------------------------------------------------------------------
{
  echo
  echo "Gateway bench on $(hostname): $NPROC cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r); load average at start $LOAD_AT_START"
  echo "Other processes kept busy on average (of $NPROC cores): $MEM_OTHER during 1, $HS_OTHER during 2, $PING_OTHER during 3."
  echo "Above ~0.1 the rates (not the per-CPU-second figures) understate an idle machine."
  echo
  echo "1. Memory per idle registered connection (sottod --loops $NPROC; server RSS at 0 connections: $RSS0 kB)"
  printf "   %-7s %12s %14s %15s %15s %15s\n" conns "server RSS kB" "user B/conn" "slab B/socket" "TCP mem B/sock" "client RSS/conn"
  for row in "${MEM_ROWS[@]}"; do
    read -r n rss user slab slab_b tcpm tcpm_b client _ <<<"$row"
    printf "   %-7s %12s %14s %15s %15s %15s\n" "$n" "$rss" "$user" "$slab_b" "$tcpm_b" "$client"
  done
  echo "   Kernel figures are machine-wide deltas of /proc/meminfo Slab and /proc/net/sockstat"
  echo "   'TCP mem' (pages) divided by 2N: both ends of every connection live on this machine."
  echo "   user B/conn = (server RSS - RSS at 0) / N, directory entry included; client RSS/conn ="
  echo "   whole sotto-load processes' RSS / N (their fixed ~MB baseline included)."
  echo "   Capacity (from $MN connections): user space $MUSER B/conn -> $PER_GB_USER per GiB, $PER_64_USER per 64 GiB;"
  echo "   user + kernel (one socket's slab) $((MUSER + MSLAB)) B/conn -> $PER_GB_ALL per GiB, $PER_64_ALL per 64 GiB"
  echo "   (memory only; fds, ports and CPU for pings are separate limits)."
  echo
  echo "2. Handshakes (sottod --loops 1; one sotto-load, 64 in flight, ${HS_SECONDS} s; new device key each)"
  printf "   %-4s %14s %16s %13s %13s %10s %10s %9s\n" kind "handshakes/s" "per server core" "server CPU s" "client CPU s" "p50 us" "p99 us" failures
  printf "   %-4s %14s %16s %13s %13s %10s %10s %9s\n" XX "$XX_RATE" "$XX_CORE" "$XX_CPU" "$XX_CCPU" "$XX_P50" "$XX_P99" "$XX_FAIL"
  printf "   %-4s %14s %16s %13s %13s %10s %10s %9s\n" IK "$IK_RATE" "$IK_CORE" "$IK_CPU" "$IK_CCPU" "$IK_P50" "$IK_P99" "$IK_FAIL"
  echo "   (server counted XX ${HS_SERVER_XX:-?}, IK ${HS_SERVER_IK:-?}; latency = client connect -> handshake done)"
  echo
  echo "3. Echo round trips (sottod --loops 1; $PING_CONNECTIONS connections, one sotto-load, open loop)"
  printf "   %-28s %12s %12s %14s %13s %9s %9s %9s\n" run "sent/s" "answered/s" "server us/RT" "client CPU s" "p50 us" "p99 us" errors
  printf "   %-28s %12s %12s %14s %13s %9s %9s %9s\n" "probe at $PING_PROBE_RATE/s, 5 s" "$MAX_SENT" "$MAX_RATE" "$MAX_US" "$MAX_CCPU" "$MAX_P50" "$MAX_P99" "$MAX_ERR"
  printf "   %-28s %12s %12s %14s %13s %9s %9s %9s\n" "half ($HALF/s), $PING_SECONDS s" "$P_SENT" "$P_RATE" "$P_US" "$P_CCPU" "$P_P50" "$P_P99" "$P_ERR"
  echo "   At half rate: p99.9 $P_P999 us, max $P_MAX us, from the planned send times; latency $P_VALID."
  echo "   Server CPU per round trip = server CPU time"
  echo "   (utime+stime, ready -> client exit) / responses. With two or more cores the server runs"
  echo "   on core 0 and sotto-load on core 1 (taskset); the client needs ~0.9 core at half rate."
} | tee "$WORK/table.txt"

mkdir -p "$(dirname "$OUT")"
{
  printf '{\n  "date": "%s", "host": "%s", "cores": %s, "kernel": "%s", "loadavg_at_start": "%s",\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)" "$NPROC" "$(uname -r)" "$LOAD_AT_START"
  printf '  "other_busy_cores": {"memory": %s, "handshakes": %s, "round_trips": %s},\n' \
    "$MEM_OTHER" "$HS_OTHER" "$PING_OTHER"
  printf '  "memory": {"server_loops": %s, "rss0_kb": %s, "steps": [' "$NPROC" "$RSS0"
  sep=""
  for row in "${MEM_ROWS[@]}"; do
    read -r n rss user slab slab_b tcpm tcpm_b client open <<<"$row"
    printf '%s\n    {"connections": %s, "server_open": %s, "rss_kb": %s, "user_bytes_per_conn": %s, "slab_kb": %s, "slab_bytes_per_socket": %s, "tcp_mem_pages": %s, "tcp_mem_bytes_per_socket": %s, "client_rss_bytes_per_conn": %s}' \
      "$sep" "$n" "$open" "$rss" "$user" "$slab" "$slab_b" "$tcpm" "$tcpm_b" "$client"
    sep=","
  done
  printf '],\n    "slab0_kb": %s, "tcp_mem0_pages": %s,\n' "$SLAB0" "$TCPMEM0"
  printf '    "capacity": {"user_bytes_per_conn": %s, "kernel_bytes_per_conn": %s, "per_gib_user": %s, "per_gib_user_kernel": %s, "per_64gib_user": %s, "per_64gib_user_kernel": %s}},\n' \
    "$MUSER" "$MSLAB" "$PER_GB_USER" "$PER_GB_ALL" "$PER_64_USER" "$PER_64_ALL"
  printf '  "handshakes": {"seconds": %s, "concurrency": 64,\n' "$HS_SECONDS"
  printf '    "XX": {"per_s": %s, "per_server_cpu_s": %s, "server_cpu_s": %s, "client_cpu_s": %s, "failures": %s, "p50_us": %s, "p99_us": %s, "server_counted": %s},\n' \
    "$XX_RATE" "$XX_CORE" "$XX_CPU" "$XX_CCPU" "$XX_FAIL" "$XX_P50" "$XX_P99" "${HS_SERVER_XX:-null}"
  printf '    "IK": {"per_s": %s, "per_server_cpu_s": %s, "server_cpu_s": %s, "client_cpu_s": %s, "failures": %s, "p50_us": %s, "p99_us": %s, "server_counted": %s}},\n' \
    "$IK_RATE" "$IK_CORE" "$IK_CPU" "$IK_CCPU" "$IK_FAIL" "$IK_P50" "$IK_P99" "${HS_SERVER_IK:-null}"
  printf '  "round_trips": {"connections": %s,\n' "$PING_CONNECTIONS"
  printf '    "probe": {"rate_target": %s, "sent_per_s": %s, "achieved_per_s": %s, "server_cpu_us_per_rt": %s, "client_cpu_s": %s, "errors": %s, "p50_us": %s, "p99_us": %s},\n' \
    "$PING_PROBE_RATE" "$MAX_SENT" "$MAX_RATE" "$MAX_US" "$MAX_CCPU" "$MAX_ERR" "$MAX_P50" "$MAX_P99"
  printf '    "half": {"rate_target": %s, "seconds": %s, "sent_per_s": %s, "achieved_per_s": %s, "server_cpu_us_per_rt": %s, "client_cpu_s": %s, "errors": %s, "p50_us": %s, "p99_us": %s, "p999_us": %s, "max_us": %s}}\n}\n' \
    "$HALF" "$PING_SECONDS" "$P_SENT" "$P_RATE" "$P_US" "$P_CCPU" "$P_ERR" "$P_P50" "$P_P99" "$P_P999" "$P_MAX"
} >"$OUT.tmp"
jq . "$OUT.tmp" >"$OUT" && rm -f "$OUT.tmp"
log "wrote $OUT"
