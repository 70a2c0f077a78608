#!/bin/sh
# Configures and builds certvisor. Usage: scripts/build.sh [--sanitize] (build dir: build, or build-asan).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build"
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
if [ "${1:-}" = "--sanitize" ]; then
    dir="$root/build-asan"
    flags="-DCMAKE_BUILD_TYPE=Debug -DCERTVISOR_SANITIZE=ON"
fi
cmake -S "$root" -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
