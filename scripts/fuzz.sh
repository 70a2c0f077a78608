#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz (clang, ASan and UBSan) and runs each for a bounded
# time, two at a time, from its committed seed corpus. Fails when any target crashes, leaks,
# times out or breaks an invariant; prints each target's executions and seconds.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 30 s each, every target)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (targets at once, default 2),
# FUZZ_NICE (niceness of the fuzzers, default 0), FUZZ_NO_BUILD=1 (run the targets already built).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
[ $# -gt 0 ] && shift
dir=${FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}
niceness=${FUZZ_NICE:-0}

case "$seconds" in
'' | *[!0-9]*)
    echo "fuzz: SECONDS must be a whole number of seconds per target, not '$seconds'" >&2
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is missing: apt-get install clang libclang-rt-14-dev (scripts/install-deps.sh)" >&2
    exit 1
fi

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    CC=clang cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTVISOR_FUZZ=ON \
        -DCERTVISOR_TESTS=OFF >/dev/null
    cmake --build "$dir" --target fuzz -j"$(nproc)" >/dev/null
fi

# Every tests/fuzz/fuzz_<target>.c but the shared fuzz_util.c, on one line.
all_targets() {
    find "$root/tests/fuzz" -maxdepth 1 -name 'fuzz_*.c' ! -name fuzz_util.c |
        sed -e 's|.*/fuzz_||' -e 's/\.c$//' | sort | tr '\n' ' '
}
targets=${*:-$(all_targets)}
for t in $targets; do
    if [ ! -x "$dir/fuzz_$t" ]; then
        echo "fuzz: no target '$t' (tests/fuzz/fuzz_$t.c); the targets are: $(all_targets)" >&2
        exit 2
    fi
done

# Leaks fail a run as crashes do; UBSan stops at the first report.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# The longest input each target tries: HTTP bodies must outgrow the server's 16 KiB first
# buffer, and certificate chains with RSA keys are a few KiB.
max_len() {
    case "$1" in
    http_server) echo 40000 ;;
    x509_check | control_proto) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

run_one() {
    t=$1
    work="$dir/fuzz-corpus/$t"
    artifacts="$dir/fuzz-artifacts/$t/"
    mkdir -p "$work" "$artifacts"
    rm -f "$artifacts"/* "$dir/fuzz-logs/$t.status"
    # New inputs go to the work corpus (first directory); the committed seeds are only read.
    # The outer timeout catches a target that stops answering altogether.
    status=0
    timeout --kill-after=10 $((seconds + 120)) nice -n "$niceness" "$dir/fuzz_$t" \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$artifacts" \
        "$work" "$root/tests/fuzz/corpus/$t" >"$dir/fuzz-logs/$t.log" 2>&1 || status=$?
    echo "$status" >"$dir/fuzz-logs/$t.status"
}

mkdir -p "$dir/fuzz-logs"
echo "fuzz: $seconds s per target, $jobs at a time: $targets" >&2
running=0
for t in $targets; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

failed=0
printf '%-16s %14s %8s %8s\n' target executions seconds crashes
for t in $targets; do
    log="$dir/fuzz-logs/$t.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    crashes=$(find "$dir/fuzz-artifacts/$t" -type f | wc -l)
    status=$(cat "$dir/fuzz-logs/$t.status")
    [ "$status" != 0 ] && [ "$crashes" -eq 0 ] && crashes=1 # killed, or died without an artifact
    printf '%-16s %14s %8s %8s\n' "$t" "${runs:-?}" "${secs:-$seconds}" "$crashes"
    [ "$crashes" -eq 0 ] || failed=1
done
if [ "$failed" != 0 ]; then
    for t in $targets; do
        [ "$(cat "$dir/fuzz-logs/$t.status")" = 0 ] && continue
        echo >&2
        echo "fuzz: $t failed (exit $(cat "$dir/fuzz-logs/$t.status")); the end of $dir/fuzz-logs/$t.log:" >&2
        grep -v '^#[0-9]' "$dir/fuzz-logs/$t.log" | tail -n 40 >&2
        find "$dir/fuzz-artifacts/$t" -type f | sed 's/^/fuzz: reproducer: /' >&2
    done
    echo "fuzz: reproduce with: $dir/fuzz_TARGET REPRODUCER; see tests/fuzz/README.md" >&2
    exit 1
fi
