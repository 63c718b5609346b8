#!/usr/bin/env bash
# Installs every Debian 12 package Sotto needs to build, test, fuzz and benchmark.
# Idempotent: packages already present are skipped by apt-get. Must run as root
# (or with sudo available) on a fresh Debian 12 machine.
set -euo pipefail

packages=(
  # toolchain
  build-essential g++ clang clang-tidy clang-format libclang-rt-14-dev llvm
  cmake ninja-build pkgconf git
  # libraries (see docs/architecture.md "Dependencies")
  libsodium-dev libssl-dev libexpected-dev
  libprotobuf-dev protobuf-compiler
  librocksdb-dev libsqlite3-dev
  libspdlog-dev libfmt-dev
  libboost-dev libboost-system-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libqrencode-dev
  # the cluster store (docs/cluster.md): the NATS C client, and the server the tests start
  libnats-dev nats-server
  # benchmark scripts
  jq
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # oracle for wire compatibility: GPL-3.0, linked into test/bench binaries only
  libsignal-protocol-c-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
