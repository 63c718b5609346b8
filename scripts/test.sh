#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs every test
# twice, in the release build (g++) and in the ASan+UBSan build (clang), with warnings
# as errors; the multi-threaded tests once more under ThreadSanitizer; the layering check,
# clang-tidy and a smoke run of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-layers.sh

for preset in release asan; do
  echo "=== build: $preset"
  bash scripts/build.sh "$preset"
  echo "=== test: $preset"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir "build/$preset" --output-on-failure -j "$(nproc)" --timeout 600
done

echo "=== ThreadSanitizer: the multi-threaded parts (event loop queue, HTTP, gateway, WebSocket,"
echo "    store group commit, push, server core)"
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$(nproc)" --target net_test gateway_test ws_gateway_test sottod \
  store_test push_test http_client_test verification_test server_core_test server_groups_test \
  groups_membership_test
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/sanitizers/tsan.supp" ctest --test-dir build/tsan --output-on-failure -j "$(nproc)" \
  --timeout 600 -R '^(EventLoop|Socket|HttpServer|HttpClient|Gateway|WsGateway|ServerCore|ServerGroups|GroupsTest|Push|WebhookCodeSender|RocksDbStoreTest|Backends/QueueTest|Backends/StoreTest|Backends/GroupStoreTest|RocksDbGroupStoreTest)\.'

echo "=== clang-tidy (bug-finding checks as errors)"
bash scripts/tidy.sh build/asan

echo "=== benchmark smoke run (figures come from scripts/bench.sh, not from here)"
build/release/bench/signal_bench --smoke
bash bench/messaging_bench.sh --smoke
bash bench/client_bench.sh --smoke
bash bench/group_bench.sh --smoke
