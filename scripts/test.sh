#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs every test
# twice, in the release build (g++) and in the ASan+UBSan build (clang), with warnings
# as errors; the multi-threaded tests once more under ThreadSanitizer; the layering check,
# clang-tidy and a smoke run of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says when it starts, in seconds since the start, so a slow CI run shows where.
phase() { echo "=== [${SECONDS}s] $*"; }
phase "install what is missing"
bash scripts/install-deps.sh
bash scripts/check-layers.sh

for preset in release asan; do
  phase "build: $preset"
  bash scripts/build.sh "$preset"
  phase "test: $preset"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir "build/$preset" --output-on-failure -j "$(nproc)" --timeout 600
done

phase "ThreadSanitizer: the multi-threaded parts (event loop queue, HTTP, gateway, WebSocket,"
echo "    store group commit, push, server core, media service, delivery, source limits)"
# Targets and test names go together: GroupCommitTest (store_test) is the store test that
# writes from many threads; MediaServerTest runs the media service (a thread per
# connection) in-process, MediaE2eTest through a TSan-built sottod.
TSAN_TARGETS=(net_test gateway_test ws_gateway_test sottod store_test push_test
  http_client_test verification_test server_core_test server_groups_test
  groups_membership_test media_server_test media_e2e_test delivery_test source_limits_test)
TSAN_TESTS='EventLoop|Socket|HttpServer|HttpClient|Gateway|WsGateway|ServerCore|ServerGroups'
TSAN_TESTS+='|GroupsTest|Push|WebhookCodeSender|RocksDbStoreTest|Backends/QueueTest'
TSAN_TESTS+='|Backends/StoreTest|Backends/GroupStoreTest|RocksDbGroupStoreTest|GroupCommitTest'
TSAN_TESTS+='|MediaServerTest|MediaE2eTest'
# Issue 12: delivery within the write budget, the per-sender quota (both backends), the
# limiters shared by every loop, and the disk-full monitor thread.
TSAN_TESTS+='|Delivery|Backends/QuotaTest|SourceLimits|RocksDbDiskFull'
# Issue 13 (compare-and-set): Accounts over a shared store from several threads.
TSAN_TARGETS+=(accounts_test)
TSAN_TESTS+='|AccountsTest'
# Issue 13: queue subscriptions (both backends), the blocking-work pool, and a loop that
# answers while another connection's request waits in the store.
TSAN_TARGETS+=(blocking_pool_test offloop_test)
TSAN_TESTS+='|Backends/SubscriptionTest|BlockingPool|BlockingWork'
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$(nproc)" --target "${TSAN_TARGETS[@]}"
# Each name must select tests, so a renamed suite cannot silently drop out of the run.
# The list is captured before it is searched: `ctest | grep -q` under pipefail fails at
# random, when grep exits at the first match and ctest dies of SIGPIPE writing the rest.
for suite in ${TSAN_TESTS//|/ }; do
  listed=$(ctest --test-dir build/tsan -N -R "^$suite\.")
  if ! grep -q "Test *#" <<<"$listed"; then
    echo "ThreadSanitizer: no test matches $suite" >&2
    exit 1
  fi
done
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/sanitizers/tsan.supp" ctest --test-dir build/tsan --output-on-failure -j "$(nproc)" \
  --timeout 600 -R "^($TSAN_TESTS)\\."

phase "clang-tidy (bug-finding checks as errors)"
bash scripts/tidy.sh build/asan

phase "benchmark smoke run (figures come from scripts/bench.sh, not from here)"
build/release/bench/signal_bench --smoke
bash bench/messaging_bench.sh --smoke
bash bench/client_bench.sh --smoke
bash bench/group_bench.sh --smoke
bash bench/media_bench.sh --smoke
bash bench/nats_costs.sh --smoke
phase "all passed"
