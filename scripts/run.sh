#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and starts sottod on its
# defaults (data in ./sotto-data, Noise over TCP on 127.0.0.1:5222, /metrics on
# 127.0.0.1:5281, the media blob service on 127.0.0.1:5282). Extra arguments go to sottod
# (e.g. --listen 127.0.0.1:0).
# The `sotto` client is built too (build/release/apps/sotto/sotto; README walkthrough).
# `bash scripts/run.sh --demo` instead runs
# sotto-demo, the Signal library shown end to end in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release >/dev/null
if [ "${1:-}" = "--demo" ]; then
  exec build/release/apps/sotto-demo
fi
defaults=()
case " $* " in
  *" --data "*|*" --data="*) ;;
  *) defaults+=(--data sotto-data) ;;
esac
case " $* " in
  *" --media-listen "*|*" --media-listen="*) ;;
  *) defaults+=(--media-listen 127.0.0.1:5282) ;;
esac
exec build/release/apps/sottod "${defaults[@]}" "$@"
