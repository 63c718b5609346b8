#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for SECONDS (default
# 600), JOBS at a time (default 2). New coverage is merged back into fuzz/corpus/<t>/.
# Usage: scripts/fuzz.sh [SECONDS] [JOBS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
jobs="${2:-2}"
shift $(( $# > 2 ? 2 : $# )) || true
build="${SOTTO_FUZZ_BUILD:-build/fuzz}"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(signal_message prekey_message sender_key_message sender_key_distribution record fingerprint)
fi

[ -n "${SOTTO_FUZZ_BUILD:-}" ] || cmake --preset fuzz >/dev/null
cmake --build "$build" --target $(printf '%s_fuzz ' "${targets[@]}")

mkdir -p "$build/runs"
run_one() {
  local t="$1" work="$build/runs/$1"
  rm -rf "$work" && mkdir -p "$work/new"
  local start=$SECONDS
  "$build/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
    "$work/new" "fuzz/corpus/$t" >"$work/log" 2>&1 || { echo "FUZZ FAILURE in $t (see $work/log)"; return 1; }
  "$build/fuzz/${t}_fuzz" -merge=1 "fuzz/corpus/$t" "$work/new" >>"$work/log" 2>&1
  echo "$t: ran $((SECONDS - start)) s clean; $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$work/log"); corpus $(ls "fuzz/corpus/$t" | wc -l) files"
}
export -f run_one
export build seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
