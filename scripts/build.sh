#!/bin/sh
# Configures and builds certvisor. Usage: scripts/build.sh [--sanitize | --run]
# build: with the tests (and their hooks into the agent); build-asan (--sanitize): the same
# under ASan and UBSan; build-run (--run): without the tests or their hooks, what
# scripts/run-local.sh runs. Prints the build directory last.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build"
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
if [ "${1:-}" = "--sanitize" ]; then
    dir="$root/build-asan"
    flags="-DCMAKE_BUILD_TYPE=Debug -DCERTVISOR_SANITIZE=ON"
elif [ "${1:-}" = "--run" ]; then
    dir="$root/build-run"
    flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTVISOR_TESTS=OFF"
fi
cmake -S "$root" -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
