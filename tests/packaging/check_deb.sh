#!/bin/bash
# The .deb on this machine, as root and without stdin: lintian; dpkg -i; the files, modes,
# owners, the certvisor user and group, the conffiles and the unit; certvisord started as the
# unit would start it, every service running and serving; reload, watchdog and stop; an upgrade
# to a rebuilt package that changes conffiles the administrator edited, while the agent runs
# (postinst re-executes it: same pid, new binary; the shard untouched, the proxy handing over
# to its new binary, the other upgraded services restarted; clients through the proxy all
# along: no new connection refused, the established one served to its end); remove, then
# purge, and
# nothing left that policy does not allow (the certvisor user and group stay).
#
# Usage: check_deb.sh DEB UPGRADE_DEB WORK_DIR
#   UPGRADE_DEB is a later build whose conf.d/20-api.conf and conf.d/30-cm.conf end with a line
#   holding UPGRADE_MARK (tests/packaging/run.sh makes it).
# This changes the machine: it installs and purges the certvisor package, creates the
# certvisor user if it does not exist, and binds the shipped services' ports while it runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=$1
upgrade_deb=$2
work=$3
upgrade_mark="UPGRADE_MARK: changed in the rebuilt package"

export DEBIAN_FRONTEND=noninteractive
conf=/etc/certvisor/certvisor.conf
unit=/lib/systemd/system/certvisord.service
state=/var/lib/certvisor
logs=/var/log/certvisor
run=/run/certvisor
notify_dir=/run/certvisor-package-check
notify_log=$work/notify.log
agent_log=$work/certvisord.log
agent_pid=""
listener_pid=""
client_pid=""
mkdir -p "$work"

# The agent started here, stopped as systemd stops the unit (SIGTERM to the main process).
stop_agent() {
    [ -n "$agent_pid" ] || return 0
    if kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
        for _ in $(seq 450); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$agent_pid" 2>/dev/null || true
    fi
    wait "$agent_pid" 2>/dev/null
    agent_status=$?
    agent_pid=""
    rm -rf "$run" # RuntimeDirectory= goes with the unit
    return 0
}
# A notify listener, then the agent as the unit starts it, until READY=1.
start_agent() {
    mkdir -p "$notify_dir"
    : >"$notify_log"
    /usr/bin/python3 -u "$here/notify_listen.py" "$notify_dir/notify.sock" >"$notify_log" 2>&1 &
    listener_pid=$!
    wait_for 5 test -S "$notify_dir/notify.sock"
    "$here/start_as_unit.sh" "$unit" "$notify_dir/notify.sock" 2000000 >>"$agent_log" 2>&1 </dev/null &
    agent_pid=$!
    if wait_for 120 grep -q ' READY=1$' "$notify_log"; then
        ok "READY=1 on the test's NOTIFY_SOCKET"
    else
        bad "READY=1 on the test's NOTIFY_SOCKET" "$(tail -n 30 "$agent_log")"
    fi
}
cleanup() {
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
    stop_agent
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
    rm -rf "$notify_dir"
    # Leave the machine as it was found, whatever failed.
    if dpkg-query -W -f='${Status}' certvisor 2>/dev/null | grep -qv "not-installed"; then
        dpkg --purge certvisor </dev/null >/dev/null 2>&1
    fi
}
trap cleanup EXIT

# What, outside the home, work and temporary directories, carries certvisor's name. man-db's
# cache (/var/cache/man) is man-db's own, which it expires.
system_paths() {
    find /etc /usr /var /run /opt /srv -xdev \
        \( -path /var/tmp -o -path /var/cache/apt -o -path /var/lib/apt -o -path /var/cache/man \) \
        -prune -o \
        -iname '*certvisor*' -print 2>/dev/null | grep -v "^$notify_dir" | sort
}

echo "# lintian"
lintian --pedantic --display-info --show-overrides "$deb" >"$work/lintian.out" 2>&1
lintian_status=$?
lintian_out=$(grep -v 'running with root privileges' "$work/lintian.out")
[ -n "$lintian_out" ] && printf '%s\n' "$lintian_out" | sed 's/^/    /'
if [ "$lintian_status" -eq 0 ] && ! grep -q '^E:' <<<"$lintian_out"; then
    ok "lintian: no errors ($(grep -c '^W:' <<<"$lintian_out") warnings, $(grep -c '^[IP]:' <<<"$lintian_out") notes, $(grep -c '^O:' <<<"$lintian_out") overridden)"
else
    bad "lintian: errors (exit status $lintian_status)"
fi

echo "# install"
if dpkg-query -W -f='${Status}' certvisor 2>/dev/null | grep -qv "not-installed"; then
    echo "    (purging a certvisor package left from an earlier run)"
    dpkg --purge certvisor </dev/null >/dev/null
fi
baseline=$(system_paths)
check "dpkg -i $(basename "$deb")" dpkg -i "$deb" </dev/null
check_eq "package status" "install ok installed $(dpkg-deb -f "$deb" Version)" \
    "$(dpkg-query -W -f='${Status} ${Version}' certvisor 2>&1)"

echo "# files, modes, owners"
for f in /usr/sbin/certvisord /usr/sbin/certvisorctl; do
    check_eq "$f" "755 root:root" "$(mode_owner $f)"
done
services=$(dpkg -L certvisor | grep '^/usr/libexec/certvisor/.')
for f in $services; do
    check_eq "$f" "755 root:root" "$(mode_owner "$f")"
done
for f in /usr/sbin/certvisord /usr/sbin/certvisorctl $services; do
    case $(file -b "$f") in
    *ELF*", stripped"*) ok "$f is a stripped ELF binary" ;;
    *) bad "$f is a stripped ELF binary" "$(file -b "$f")" ;;
    esac
done
check "certvisord is hardened (PIE, bind-now, RELRO, stack protector, fortify)" \
    bash -c "readelf -d /usr/sbin/certvisord | grep -q 'FLAGS.*BIND_NOW' &&
             readelf -h /usr/sbin/certvisord | grep -q 'DYN (Position-Independent' &&
             readelf -lW /usr/sbin/certvisord | grep -q GNU_RELRO &&
             readelf -sW --dyn-syms /usr/sbin/certvisord | grep -q __stack_chk_fail &&
             readelf -sW --dyn-syms /usr/sbin/certvisord | grep -q '__[a-z]*_chk'"
for d in /etc/certvisor /etc/certvisor/conf.d /usr/libexec/certvisor; do
    check_eq "$d" "755 root:root" "$(mode_owner $d)"
done
etc_files=$(dpkg -L certvisor | grep '^/etc/' | while read -r p; do [ -f "$p" ] && echo "$p"; done)
for f in $etc_files; do
    check_eq "$f" "644 root:root" "$(mode_owner "$f")"
done
check "the shipped conf.d is all there" \
    test "$(ls /etc/certvisor/conf.d/*.conf | wc -l)" -ge 8
check_eq "$unit" "644 root:root" "$(mode_owner $unit)"
for f in /usr/share/man/man8/certvisord.8.gz /usr/share/man/man8/certvisorctl.8.gz \
    /usr/share/man/man5/certvisor.conf.5.gz /usr/share/doc/certvisor/changelog.Debian.gz; do
    check "$f (gzip, no name or time stamp)" \
        bash -c "gzip -t '$f' && [ \"\$(od -An -tu4 -j4 -N4 '$f' | tr -d ' ')\" = 0 ]"
done
check "man finds certvisord(8) and certvisor.conf(5)" \
    bash -c "man -w certvisord && man -w 5 certvisor.conf"
check "copyright is machine-readable (DEP-5)" \
    grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' \
    /usr/share/doc/certvisor/copyright
check "operations guide installed" test -s /usr/share/doc/certvisor/operations.md
if [ -d "$here/../../services/cm/www" ]; then
    check "the console's files in /usr/share/certvisor/console" \
        test -n "$(find /usr/share/certvisor/console -type f 2>/dev/null)"
fi
check "tmpfiles.d and sysusers.d entries installed" \
    test -f /usr/lib/tmpfiles.d/certvisor.conf -a -f /usr/lib/sysusers.d/certvisor.conf

echo "# user, group, directories"
user_line=$(getent passwd certvisor)
IFS=: read -r _ _ uid gid _ home shell <<<"$user_line"
check "user certvisor exists" test -n "$user_line"
check "certvisor is a system user (uid $uid below 1000)" test "${uid:-1000}" -lt 1000
check_eq "certvisor's primary group" "certvisor" "$(getent group "${gid:-x}" | cut -d: -f1)"
check_eq "certvisor's home and shell" "/var/lib/certvisor /usr/sbin/nologin" "$home $shell"
check "certvisor is in certvisor-control (the control socket's group)" \
    bash -c "id -nG certvisor | grep -qw certvisor-control"
check_eq "$state" "750 root:certvisor" "$(mode_owner $state)"
check_eq "$logs" "2750 root:adm" "$(mode_owner $logs)"

echo "# conffiles"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' certvisor | awk 'NF {print $1}' | sort)
check_eq "every file under /etc is a conffile, and nothing else" "$(sort <<<"$etc_files")" "$conffiles"

echo "# the unit"
check "enabled (multi-user.target.wants)" \
    test "$(readlink /etc/systemd/system/multi-user.target.wants/certvisord.service)" = "$unit"
verify_out=$(systemd-analyze verify "$unit" 2>&1)
if [ $? -eq 0 ] && [ -z "$verify_out" ]; then ok "systemd-analyze verify: clean"; else
    bad "systemd-analyze verify: clean" "$verify_out"; fi
security_out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for certvisord.service: //p' <<<"$security_out")
echo "    systemd-analyze security: $exposure"
printf '%s\n' "$security_out" | grep -E '^✗' | sed 's/^/    /' | head -n 40
check "systemd-analyze security: exposure at most 3.0 (2.7 when this check was written)" \
    awk -v s="${exposure%% *}" 'BEGIN { exit !(s != "" && s + 0 <= 3.0) }'
check "certvisord --check (ExecStartPre=)" /usr/sbin/certvisord --check -c $conf
expected_services=$(/usr/sbin/certvisord --check -c $conf 2>/dev/null | awk 'NR > 1 {print $1}' | sort)

echo "# certvisord started as the unit starts it"
for port in $(grep -ho '"--port", "[0-9]*"\|port *= *[0-9]*' /etc/certvisor/conf.d/*.conf | grep -o '[0-9]*$'); do
    if ss -Hltn "sport = :$port" | grep -q .; then
        bad "port $port (conf.d) is free" "$(ss -Hltnp "sport = :$port")"
    fi
done
start_agent
check "STATUS= sent" grep -q ' STATUS=' "$notify_log"
# The sandbox start_as_unit.sh applied is really there (else the checks below prove less).
check_eq "the main process is certvisord" "certvisord" "$(cat /proc/$agent_pid/comm 2>&1)"
check "the agent runs with no_new_privs and a seccomp filter" \
    grep -Pzq 'NoNewPrivs:\s*1\nSeccomp:\s*2' /proc/$agent_pid/status
check_eq "the agent's capability bounding set is the unit's" \
    "$(sed -n 's/^CapabilityBoundingSet=//p' $unit | tr ' ' '\n' | sort)" \
    "$(cap_names "$(awk '/^CapBnd:/ {print $2}' /proc/$agent_pid/status)")"
write_test=$(nsenter -t "$agent_pid" -m touch /etc/certvisor-write-test 2>&1)
rm -f /etc/certvisor-write-test
check "the agent sees /etc read-only (ProtectSystem=strict)" grep -q 'Read-only file system' <<<"$write_test"
status_out=$(certvisorctl status 2>&1)
printf '%s\n' "$status_out" | sed 's/^/    /'
for name in $expected_services; do
    check "$name RUNNING" grep -Eq "^$name +RUNNING " <<<"$status_out"
done
check "certvisorctl status lists exactly the configured services" \
    test "$(awk '{print $1}' <<<"$status_out" | sort)" = "$expected_services"
pids=$(sed -n 's/.* pid \([0-9]*\),.*/\1/p' <<<"$status_out")
for pid in $pids; do
    check_eq "service pid $pid ($(ps -o comm= -p "$pid")) runs as certvisor:certvisor" \
        "certvisor certvisor" "$(ps -o euser:32=,egroup:32= -p "$pid" | awk '{print $1, $2}')"
done
# Every TCP port a service listens on takes a connection; a TLS port presents a certificate that
# the cluster CA verifies (so the service, as certvisor, read its key). The Redis shard and the
# proxy answer PING (through the proxy, from the shard behind it).
tls_ports=0
for pid in $pids; do
    comm=$(ps -o comm= -p "$pid")
    for addr in $(ss -Hltnp | grep "pid=$pid," | awk '{print $4}' | sort -u); do
        host=${addr%:*} port=${addr##*:}
        case $host in \[*\]) host=${host#[}; host=${host%]} ;; \*|0.0.0.0) host=127.0.0.1 ;; esac
        target=$host:$port
        case $host in *:*) target="[$host]:$port" ;; esac
        what="$comm (pid $pid) on $addr"
        if timeout 5 openssl s_client -connect "$target" -CAfile $state/ca.pem \
            -verify_return_error -brief </dev/null >"$work/tls.out" 2>&1; then
            tls_ports=$((tls_ports + 1))
            ok "$what: TLS, certificate verified with the cluster CA"
            reply=$(timeout 10 redis-cli --tls --cacert $state/ca.pem -h "$host" -p "$port" ping 2>&1)
        else
            check "$what: takes a connection" timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port"
            reply=$(timeout 10 redis-cli -h "$host" -p "$port" ping 2>&1)
        fi
        case $comm in
        redis-server | certvisor-proxy) check_eq "$what: answers PING" "PONG" "$reply" ;;
        esac
    done
done
check "at least one service speaks TLS" test "$tls_ports" -gt 0

echo "# the state the agent made, and who can read it"
check_eq "$state after the first start" "750 root:certvisor" "$(mode_owner $state)"
check_eq "$state/certs" "750 root:certvisor" "$(mode_owner $state/certs)"
check_eq "$run" "755 root:root" "$(mode_owner $run)"
check_eq "$run/control.sock" "660 root:certvisor-control" "$(mode_owner $run/control.sock)"
service_key=$(ls $state/certs/*/current/key.pem 2>/dev/null | grep -v /cluster_ca/ | head -n 1)
ca_key=$(ls $state/certs/cluster_ca/current/key.pem 2>/dev/null)
check "a service key exists" test -n "$service_key"
check_eq "service key $service_key" "640 root:certvisor" "$(mode_owner "$service_key")"
check_eq "CA key" "600" "$(stat -c %a "$ca_key" 2>&1)"
check "the certvisor user reads a service key" \
    setpriv --reuid=certvisor --regid=certvisor --init-groups head -c 1 "$service_key"
check "the certvisor user cannot read the CA key" \
    bash -c "! setpriv --reuid=certvisor --regid=certvisor --init-groups head -c 1 '$ca_key' 2>/dev/null"
check "another user cannot enter $state" \
    bash -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups ls $state >/dev/null 2>&1"
log_files=$(find $logs -type f)
for f in $log_files; do
    check_eq "log $f" "640 root:adm" "$(mode_owner "$f")"
done

echo "# reload, watchdog, stop"
lines_before=$(wc -l <"$notify_log")
kill -HUP "$agent_pid" # ExecReload=
if wait_for 60 bash -c "tail -n +$((lines_before + 1)) '$notify_log' | grep -A50 ' RELOADING=1$' | grep -q ' READY=1$'"; then
    ok "SIGHUP: RELOADING=1, then READY=1"
else
    bad "SIGHUP: RELOADING=1, then READY=1" "$(tail -n 20 "$notify_log")"
fi
check "WATCHDOG=1 pings (WATCHDOG_USEC=2000000)" wait_for 5 grep -q ' WATCHDOG=1$' "$notify_log"
stop_agent
check_eq "SIGTERM: certvisord exits 0" "0" "$agent_status"
check "STOPPING=1 sent" grep -q ' STOPPING=1$' "$notify_log"
check "no process of the certvisor user is left" bash -c "! pgrep -u certvisor"
kill "$listener_pid" 2>/dev/null
listener_pid=""
ca_hash=$(sha256sum $state/ca.pem | cut -d' ' -f1)
uid_before=$uid

echo "# upgrade while the agent runs: postinst re-executes it, the administrator's edit kept"
start_agent
shard_pid_before=$(certvisorctl pid redis-db1 2>&1)
proxy_pid_before=$(certvisorctl pid proxy 2>&1)
binary_inode_before=$(stat -Lc %i /proc/$agent_pid/exe)
lines_before=$(wc -l <"$notify_log")
echo "# edited by the administrator" >>/etc/certvisor/conf.d/30-cm.conf
# Clients through the proxy for the whole upgrade (db1's TLS port, 12000 in 10-redis-db1.conf):
# new connections all along, and one established connection.
/usr/bin/python3 -u "$here/upgrade_client.py" --port 12000 --ca $state/ca.pem \
    >"$work/upgrade_client.out" 2>&1 &
client_pid=$!
check "the clients run before the upgrade" wait_for 30 client_new_connections_past "$work/upgrade_client.out" 50
check "dpkg -i --force-confold $(basename "$upgrade_deb")" \
    dpkg -i --force-confold "$upgrade_deb" </dev/null
check "the agent (pid $agent_pid) still runs" kill -0 "$agent_pid"
check_eq "it runs the upgraded binary" "$(stat -c %i /usr/sbin/certvisord)" \
    "$(stat -Lc %i /proc/$agent_pid/exe 2>&1)"
check "that is a new binary" test "$(stat -c %i /usr/sbin/certvisord)" != "$binary_inode_before"
check_eq "the shard (redis-server, not upgraded) kept its pid" "$shard_pid_before" \
    "$(certvisorctl pid redis-db1 2>&1)"
check "the proxy handed its sockets over to its upgraded binary" \
    wait_for 30 grep -q "Service 'proxy': pid [0-9]* took over from pid" "$agent_log"
check "every service runs again (the upgraded ones restarted in order)" \
    wait_for 120 certvisorctl status
# No service runs a binary the upgrade replaced.
stale=""
for pid in $(certvisorctl pid all 2>/dev/null | awk '{print $NF}'); do
    if readlink /proc/$pid/exe 2>/dev/null | grep -q '(deleted)'; then
        stale="$stale $pid:$(ps -o comm= -p $pid)"
    fi
done
check_eq "every service runs its upgraded binary" "" "$stale"
if wait_for 60 bash -c "tail -n +$((lines_before + 1)) '$notify_log' | grep -A50 ' RELOADING=1$' | grep -q ' READY=1$'"; then
    ok "the re-exec: RELOADING=1, then READY=1"
else
    bad "the re-exec: RELOADING=1, then READY=1" "$(tail -n 20 "$notify_log")"
fi
check "the agent's log says so" grep -q "Kept [0-9]* running services across the re-exec" "$agent_log"
# The clients go on after the upgrade, then stop: the old proxy, which served the established
# connection to its end, exits once that closes.
check "new connections go on after the upgrade" \
    wait_for 30 client_new_connections_past "$work/upgrade_client.out" \
    $(($(client_new_connections "$work/upgrade_client.out") + 50))
kill -TERM "$client_pid"
wait "$client_pid"
client_pid=""
check_client_final "$work/upgrade_client.out"
check "the established connection was served to its end by the old proxy (pid $proxy_pid_before)" \
    wait_for 30 grep -q "Service 'proxy': its previous process $proxy_pid_before ended after the hand-over" "$agent_log"
stop_agent
check_eq "SIGTERM after the upgrade: certvisord exits 0" "0" "$agent_status"
kill "$listener_pid" 2>/dev/null
listener_pid=""
check_eq "upgraded" "install ok installed $(dpkg-deb -f "$upgrade_deb" Version)" \
    "$(dpkg-query -W -f='${Status} ${Version}' certvisor 2>&1)"
check "30-cm.conf (edited here, changed in the package): the edit is kept" \
    bash -c "grep -q '^# edited by the administrator' /etc/certvisor/conf.d/30-cm.conf &&
             ! grep -q '$upgrade_mark' /etc/certvisor/conf.d/30-cm.conf"
check "30-cm.conf.dpkg-dist holds the package's new version" \
    grep -q "$upgrade_mark" /etc/certvisor/conf.d/30-cm.conf.dpkg-dist
check "20-api.conf (not edited, changed in the package): updated" \
    grep -q "$upgrade_mark" /etc/certvisor/conf.d/20-api.conf
check "the state is kept across the upgrade (same CA)" \
    test "$(sha256sum $state/ca.pem | cut -d' ' -f1)" = "$ca_hash"
check_eq "the certvisor user is the same" "$uid_before" "$(id -u certvisor)"
check_eq "$state after the upgrade" "750 root:certvisor" "$(mode_owner $state)"
check "the upgraded configuration checks" /usr/sbin/certvisord --check -c $conf

echo "# remove"
check "dpkg -r certvisor" dpkg -r certvisor </dev/null
check_eq "package status" "deinstall ok config-files" "$(dpkg-query -W -f='${Status}' certvisor 2>&1)"
check "programs gone" test ! -e /usr/sbin/certvisord -a ! -e /usr/libexec/certvisor
check "configuration kept" test -f $conf -a -f /etc/certvisor/conf.d/30-cm.conf
check "state kept" test -f $state/ca.pem

echo "# purge"
check "dpkg --purge certvisor" dpkg --purge certvisor </dev/null
check "package gone" bash -c "! dpkg-query -W -f='\${Status}' certvisor 2>/dev/null | grep -q ok"
for path in /etc/certvisor $state $logs $run /etc/systemd/system/certvisord.service \
    /etc/systemd/system/multi-user.target.wants/certvisord.service; do
    check "$path gone" test ! -e "$path" -a ! -L "$path"
done
check_eq "nothing named certvisor left under /etc /usr /var /run /opt /srv" \
    "$baseline" "$(system_paths)"
check "the certvisor user and group stay (see postrm)" \
    bash -c "getent passwd certvisor && getent group certvisor"

summary deb
