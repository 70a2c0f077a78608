#!/bin/sh
# Runs every test: installs dependencies, builds, then ctest (cmocka unit tests and the
# integration suite against the real binaries). Usage: scripts/test.sh [--sanitize]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/check-format.sh"
dir=$("$root/scripts/build.sh" "$@" | tail -n 1)
if [ "${1:-}" = "--sanitize" ]; then
    # Leaks, overflows and undefined behaviour fail the run.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
cd "$dir"
# One ctest entry per unit test and per integration test file, run side by side: each binds
# free ports on loopback and works in a temporary directory of its own. Much of an integration
# test is waiting, so one more job than CPUs; CERTVISOR_TEST_JOBS overrides.
ctest --output-on-failure --timeout 1500 -j "${CERTVISOR_TEST_JOBS:-$(($(nproc) + 1))}"
