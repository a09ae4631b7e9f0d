#!/bin/sh
# Installs what the tests need, builds, and runs the whole suite: unit
# tests (cmocka) and namespace integration tests, through ctest.
set -e
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests build network namespaces" >&2; exit 1; }
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 900 "$@"
