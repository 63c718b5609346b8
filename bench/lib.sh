# Shell pieces shared by the benchmark scripts. Source it after setting BENCH (the
# script's name, for messages) and SOTTOD; then call bench_init.
#
# bench_init             WORK = a fresh temp dir under ${BENCH_DIR:-${TMPDIR:-/tmp}} (the
#                        servers' data dirs go there: point BENCH_DIR at the disk to
#                        measure); PIDS = processes stopped (TERM, then KILL) and WORK
#                        removed when the script exits
# fs_type DIR            the filesystem DIR is on: the mount's type (findmnt) and the
#                        statfs(2) f_type name (stat -f), e.g. "ext4 (statfs ext2/ext3)"
# fs_is_volatile DIR     true if DIR is on tmpfs or ramfs, where an fsync writes nothing
#                        durable, so a durable (fsync) figure measured there means nothing
# require_tools T...     exits 2 unless each T is an executable path or a command
# log, calc EXPR [DIGITS], now_ms, busy_ticks, cpu_ticks PID, child_cpu (sets CHILD_CPU)
# start_sottod DIR LOOPS CONFIG
#                        starts sottod on 127.0.0.1 with free ports (under SERVER_PIN if
#                        set) and waits for it; sets SERVER_PID, SERVER_PORT, SERVER_HTTP,
#                        SERVER_KEY, SERVER_CODES (its verification-codes.log) and
#                        SERVER_FS (fs_type of DIR, also logged)
# stop_pid PID           SIGTERM and wait
# CLK_TCK, NPROC

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

bench_init() {
  WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/$BENCH.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

require_tools() {
  local t
  for t in "$@"; do
    if [[ "$t" == */* ]]; then
      [ -x "$t" ] || { echo "$BENCH: $t not found; build it (or set SOTTOD/SOTTO_LOAD)" >&2; exit 2; }
    else
      command -v "$t" >/dev/null || { echo "$BENCH: needs $t" >&2; exit 2; }
    fi
  done
}

log() { echo "$BENCH: $*" >&2; }
fs_statfs_type() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }
fs_type() {
  local mount
  mount=$(findmnt -n -o FSTYPE --target "$1" 2>/dev/null | head -1 || true)
  echo "${mount:-unknown} (statfs $(fs_statfs_type "$1"))"
}
fs_is_volatile() {
  case "$(fs_statfs_type "$1")" in
    tmpfs | ramfs) return 0 ;;
  esac
  case "$(findmnt -n -o FSTYPE --target "$1" 2>/dev/null | head -1 || true)" in
    tmpfs | ramfs) return 0 ;;
  esac
  return 1
}
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Machine-wide busy time in clock ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# utime + stime of a process in clock ticks (fields 14, 15; counted after the ")" ending
# the name).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# Sets CHILD_CPU: seconds used by this shell's waited-for children (`times` must run in
# this shell, not in a $(...) subshell).
child_cpu() {
  times >"$WORK/times"
  CHILD_CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }' "$WORK/times")
}
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

start_sottod() {
  local dir="$1"
  mkdir -p "$dir"
  ${SERVER_PIN[@]+"${SERVER_PIN[@]}"} "$SOTTOD" --data "$dir" --listen 127.0.0.1:0 \
    --ws-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --loops "$2" \
    --config "$3" --log-level warn >"$dir/sottod.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local i
  for i in $(seq 100); do
    grep -q "data in" "$dir/sottod.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/sottod.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "data in" "$dir/sottod.log" || { log "sottod did not start"; exit 1; }
  SERVER_PORT=$(jq .listen "$dir/ports.json")
  SERVER_HTTP=$(jq .http_listen "$dir/ports.json")
  SERVER_KEY=$(tr -d '[:space:]' <"$dir/server.pub")
  SERVER_CODES="$dir/verification-codes.log"
  # Durable figures depend on the filesystem: every run says which one it had.
  SERVER_FS=$(fs_type "$dir")
  if fs_is_volatile "$dir"; then
    log "data in $dir on $SERVER_FS: tmpfs/ramfs, so its fsync and durable figures measure nothing"
  else
    log "data in $dir on $SERVER_FS"
  fi
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
