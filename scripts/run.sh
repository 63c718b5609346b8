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
echo "run.sh: checking the Debian packages Sotto needs (installs what is missing)"
bash scripts/install-deps.sh
# Only the programs, not the tests: a first build takes several minutes on 2 cores, and
# ninja's [done/total] lines show how far it is.
echo "run.sh: building sottod, sotto and sotto-demo (release) in build/release; log in build/run-build.log"
mkdir -p build
set +e
bash scripts/build.sh release sottod sotto sotto-demo 2>&1 | tee build/run-build.log \
  | awk '/^\[[0-9]+\/[0-9]+\]/ { n++; if (n % 10 == 1) { print "run.sh:   " $1 " steps"; fflush() } }'
status="${PIPESTATUS[0]}"
set -e
if [ "$status" -ne 0 ]; then
  tail -n 40 build/run-build.log >&2
  echo "run.sh: the build failed (whole log: build/run-build.log)" >&2
  exit "$status"
fi
echo "run.sh: build done"
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
