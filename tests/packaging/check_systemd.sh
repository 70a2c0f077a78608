#!/bin/bash
# The .deb under a real systemd as PID 1: a Debian 12 container (debootstrap, then
# systemd-nspawn --boot, with a network namespace of its own: only its loopback) in which the
# package is installed and the unit run as systemd runs it. What only systemd can show:
#   - the unit starts (Type=notify: READY=1 comes from the agent) and its sandbox lets every
#     service run;
#   - kill -9 of the agent: Restart=on-failure starts it again, and KillMode=process left the
#     services running, so the new agent adopts them with the same pids;
#   - certvisorctl daemon-reexec: same main pid, the unit stays active (RELOADING=1, READY=1);
#   - a package upgrade while clients run through the proxy: postinst re-executes the agent,
#     no new connection is refused and the established one is served to its end;
#   - systemctl stop stops every service.
#
# Usage: check_systemd.sh DEB UPGRADE_DEB WORK_DIR   (run.sh does this; as root). The container's
# root is WORK_DIR/root (kept between runs of the same WORK_DIR: debootstrap takes a minute or
# two); nothing outside WORK_DIR changes, and the container is stopped whatever fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=$1
upgrade_deb=$2
work=$3
root=$work/root
mkdir -p "$work"
container_pid=""
leader=""
machine=cv-pkg-check-$$

# in_container COMMAND...: runs COMMAND in the container (all its namespaces, its root, the
# working directory of its PID 1: --wd=/ would be the host's /, outside the container's root).
in_container() {
    nsenter --target "$leader" --all --root --wd env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 "$@"
}
journal_has() { in_container journalctl -u certvisord --no-pager | grep -q "$1"; }
stop_container() {
    [ -n "$container_pid" ] || return 0
    kill -TERM "$container_pid" 2>/dev/null # nspawn asks the container's systemd to power off
    for _ in $(seq 150); do kill -0 "$container_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$container_pid" 2>/dev/null
    wait "$container_pid" 2>/dev/null
    container_pid=""
    rm -rf "/run/systemd/nspawn/propagate/$machine" # what nspawn leaves on the host
}
trap stop_container EXIT

# What the package needs at run time (its Depends, without versions), systemd itself, and what
# the checks use.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^$')
include=$(printf '%s\n' $depends systemd systemd-sysv dbus procps python3-redis | paste -sd, -)
if [ ! -x "$root/lib/systemd/systemd" ]; then
    echo "# debootstrap: Debian 12 with $include"
    rm -rf "$root"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    if ! debootstrap --variant=minbase --include="$include" bookworm "$root" \
        "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1; then
        bad "debootstrap a Debian 12 root for the container" "$(tail -n 20 "$work/debootstrap.log")"
        echo "systemd: $passed passed, $failed failed"
        exit 1
    fi
fi
cp "$deb" "$root/root/certvisor-1.deb"
cp "$upgrade_deb" "$root/root/certvisor-2.deb"
cp "$here/upgrade_client.py" "$root/root/upgrade_client.py"

echo "# boot: systemd as PID 1 of a container with its own network namespace"
systemd-nspawn --quiet --boot --directory="$root" --machine="$machine" \
    --private-network --register=no --keep-unit --console=pipe \
    >"$work/container.log" 2>&1 </dev/null &
container_pid=$!
leader_of() { leader=$(pgrep -P "$container_pid" | head -n 1) && [ -n "$leader" ]; }
booted() { state=$(in_container systemctl is-system-running 2>/dev/null); [ "$state" = running ] || [ "$state" = degraded ]; }
if wait_for 30 leader_of && wait_for 90 booted; then
    ok "the container's systemd is up ($(in_container systemctl is-system-running 2>&1))"
else
    bad "the container's systemd is up" "$(tail -n 30 "$work/container.log")"
    echo "systemd: $passed passed, $failed failed"
    exit 1
fi
check_eq "PID 1 in the container is systemd" "systemd" "$(in_container cat /proc/1/comm 2>&1)"

echo "# install: the unit starts, Type=notify"
check "dpkg -i certvisor (release 1)" in_container dpkg -i /root/certvisor-1.deb
in_container systemctl start certvisord >/dev/null 2>&1
unit_active() { [ "$(in_container systemctl is-active certvisord)" = active ]; }
main_pid() { in_container systemctl show -P MainPID certvisord; }
all_running() { in_container certvisorctl status >/dev/null; }
check "systemctl start certvisord: active (READY=1 received)" wait_for 120 unit_active
check "every service RUNNING" wait_for 120 all_running
status=$(in_container certvisorctl status 2>&1)
printf '%s\n' "$status" | sed 's/^/    /'
status_text=$(in_container systemctl show -P StatusText certvisord)
check "StatusText= from the agent's STATUS= ($status_text)" test -n "$status_text"
service_pids() { in_container certvisorctl pid all 2>/dev/null | awk '{print $NF}' | sort | paste -sd' ' -; }
pids_before=$(service_pids)
check "service pids known" test -n "$pids_before"

echo "# kill -9 of the agent: systemd restarts it, the services are adopted with their pids"
agent_before=$(main_pid)
in_container kill -KILL "$agent_before"
restarted() { p=$(main_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$agent_before" ] && unit_active; }
check "the unit restarted it (Restart=on-failure, after RestartSec=2s)" wait_for 60 restarted
check "every service RUNNING after the restart" wait_for 60 all_running
check_eq "every service kept its pid (KillMode=process)" "$pids_before" "$(service_pids)"
check "the new agent adopted them" journal_has "Adopted [0-9]* running services\? from the previous agent"

echo "# daemon-reexec under systemd: same main pid, the unit stays active"
agent_before=$(main_pid)
check "certvisorctl daemon-reexec" in_container certvisorctl daemon-reexec
check_eq "same main pid" "$agent_before" "$(main_pid)"
check "the unit is active" unit_active
check_eq "every service kept its pid" "$pids_before" "$(service_pids)"

echo "# upgrade while clients run through the proxy: postinst re-executes the agent"
proxy_before=$(in_container certvisorctl pid proxy 2>&1)
in_container python3 -u /root/upgrade_client.py --port 12000 --ca /var/lib/certvisor/ca.pem \
    >"$work/upgrade_client.out" 2>&1 &
client_pid=$!
check "the clients run before the upgrade" wait_for 30 client_new_connections_past "$work/upgrade_client.out" 50
check "dpkg -i certvisor (release 2)" in_container dpkg -i --force-confold /root/certvisor-2.deb
check_eq "the agent was re-executed, not restarted (same main pid)" "$agent_before" "$(main_pid)"
check "the unit is active" unit_active
check "every service RUNNING after the upgrade" wait_for 120 all_running
check "new connections go on after the upgrade" \
    wait_for 30 client_new_connections_past "$work/upgrade_client.out" \
    $(($(client_new_connections "$work/upgrade_client.out") + 50))
# SIGTERM to the client itself (nsenter, its parent here, waits for it and passes its status).
in_container pkill -TERM -f upgrade_client.py
wait "$client_pid"
check_client_final "$work/upgrade_client.out"
check "the old proxy (pid $proxy_before) ended after the hand-over" \
    wait_for 30 journal_has "Service 'proxy': its previous process $proxy_before ended after the hand-over"

echo "# systemctl stop: every service stops"
check "systemctl stop certvisord" in_container systemctl stop certvisord
check_eq "the unit is inactive" "inactive" "$(in_container systemctl is-active certvisord)"
none_of_certvisor() { ! in_container pgrep -u certvisor; }
check "no process of the certvisor user is left" none_of_certvisor

stop_container
echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
