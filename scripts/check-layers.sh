#!/usr/bin/env bash
# Rejects includes that point up the layer stack of docs/architecture.md, and any
# include of another module's internal/ headers. CMake targets enforce link edges; this
# catches header-only edges too.
set -euo pipefail
cd "$(dirname "$0")/.."
# layer -> the modules it may include (itself included)
declare -A allowed=(
  [base]="base"
  [crypto]="base crypto"
  [signal]="base crypto signal"
  [noise]="base crypto noise"
  [wire]="base wire"
  [net]="base net"
  [store]="base store"
  [server]="base crypto noise wire net store server"
  [client]="base crypto signal noise wire net store client"
)
fail=0
for layer in "${!allowed[@]}"; do
  [ -d "src/$layer" ] || continue
  while IFS= read -r line; do
    file="${line%%:*}"
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    mod="${inc%%/*}"
    [ -n "${allowed[$mod]+x}" ] || continue  # not a project module (e.g. system header)
    if ! grep -qw "$mod" <<<"${allowed[$layer]}"; then
      echo "layer violation: $file includes $inc ($layer may not depend on $mod)"; fail=1
    fi
    if [[ "$inc" == */internal/* && "$mod" != "$layer" ]]; then
      echo "internal header of $mod included from $file"; fail=1
    fi
  done < <(grep -rn '#include "' "src/$layer" || true)
done
# Only crypto/ may include libsodium or OpenSSL headers.
if grep -rnE '#include <(sodium|openssl)' src --include='*.h' --include='*.cc' | grep -v '^src/crypto/'; then
  echo "only src/crypto/ may include libsodium or OpenSSL"; fail=1
fi
[ "$fail" -eq 0 ] && echo "check-layers: ok"
exit "$fail"
