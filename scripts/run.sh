#!/usr/bin/env bash
# The README's run command. The server (sottod) does not exist yet (issue: gateway);
# until it does, this builds and runs sotto-demo, which shows the Signal library in one
# process: X3DH from a prekey bundle, Double Ratchet messages, a group sender key and
# matching safety numbers. It opens no socket and stores nothing on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release >/dev/null
exec build/release/apps/sotto-demo "$@"
