# Shared by the package checks: counted checks and small waits. Sourced, not run.

passed=0
failed=0

# ok|bad DESCRIPTION [DETAIL]: one line per check, the detail indented under a failure.
ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
}

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0; shows its output when it does not.
check() {
    desc=$1
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else bad "$desc" "$out"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected: $2
actual:   $3"; fi
}

# mode_owner PATH: "mode user:group", as stat shows them (mode in octal, with special bits).
mode_owner() {
    stat -c '%a %U:%G' "$1" 2>&1
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds; fails at the deadline.
wait_for() {
    deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# cap_names HEX: the capability names (CAP_CHOWN ...) of a /proc/PID/status Cap* mask, sorted.
cap_names() {
    local names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
        LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
        SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
        SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
        MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
        CHECKPOINT_RESTORE)
    local mask=$((16#$1)) i
    for i in "${!names[@]}"; do
        if (((mask >> i) & 1)); then echo "CAP_${names[$i]}"; fi
    done | sort
}

# summary NAME: the closing line, and the exit status.
summary() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# upgrade_client.py's output in FILE: how many new connections it made and checked so far
# (client_new_connections FILE), whether that is past N (client_new_connections_past FILE N),
# and its final counts checked: no new connection refused or failed, no request on the
# established connection failed (check_client_final FILE).
client_new_connections() {
    grep "^progress" "$1" | tail -n 1 | sed -n 's/.* new_ok=\([0-9]*\).*/\1/p'
}
client_new_connections_past() { [ "$(client_new_connections "$1")" -gt "$2" ] 2>/dev/null; }
check_client_final() {
    final=$(grep "^final" "$1")
    echo "# the clients across the upgrade: ${final#final }"
    check_eq "new connections across the upgrade: refused or failed" "0" \
        "$(sed -n 's/.* new_failed=\([0-9]*\).*/\1/p' <<<"$final")"
    check_eq "requests on the established connection: failed" "0" \
        "$(sed -n 's/.* established_failed=\([0-9]*\).*/\1/p' <<<"$final")"
}
