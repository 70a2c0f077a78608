#!/bin/bash
# Starts the installed certvisord as its systemd unit would, on a machine where systemd is not
# running (a container, CI): the settings are read from the installed unit file, and this
# process becomes the agent (every step execs), so the caller's $! is the main PID.
#
# Usage: start_as_unit.sh UNIT_FILE NOTIFY_SOCKET WATCHDOG_USEC
#
# What is reproduced: ExecStartPre= and ExecStart=, a clean environment with NOTIFY_SOCKET,
# WATCHDOG_USEC/WATCHDOG_PID and RUNTIME_DIRECTORY, RuntimeDirectory= (made fresh; the caller
# removes it after the stop, as systemd does), UMask=, NoNewPrivileges=,
# CapabilityBoundingSet=, and in a mount namespace of its own ProtectSystem=strict (the
# whole tree read-only but ReadWritePaths=, the runtime directory and the API file systems),
# ProtectHome=yes and PrivateTmp=yes, and SystemCallFilter= (an allow list) with
# SystemCallErrorNumber= through libseccomp (seccomp_exec.py). Not reproduced: the namespace,
# address-family and kernel-protection settings, which need systemd itself.
set -eu
unit=$1
notify_socket=$2
watchdog_usec=$3

# The value of a [Service] setting (the last one wins, as in systemd); empty when unset.
setting() {
    sed -n "s/^$1=//p" "$unit" | tail -n 1
}

exec_start=$(setting ExecStart)
exec_start_pre=$(setting ExecStartPre)
umask_value=$(setting UMask)
runtime_dir=$(setting RuntimeDirectory)
runtime_mode=$(setting RuntimeDirectoryMode)
read_write=$(setting ReadWritePaths)
caps=$(setting CapabilityBoundingSet)
[ -n "$exec_start" ] || { echo "start_as_unit: no ExecStart= in $unit" >&2; exit 1; }

# CapabilityBoundingSet=CAP_SETUID CAP_KILL -> setpriv's -all,+setuid,+kill
bounding=-all
for cap in $caps; do
    cap=${cap#CAP_}
    bounding="$bounding,+$(printf '%s' "$cap" | tr 'A-Z' 'a-z')"
done
setpriv_args=(--bounding-set "$bounding" --inh-caps -all)
[ "$(setting NoNewPrivileges)" = yes ] && setpriv_args+=(--no-new-privs)

if [ -n "$runtime_dir" ]; then
    rm -rf "/run/$runtime_dir"
    install -d -m "${runtime_mode:-0755}" "/run/$runtime_dir"
fi

# The mounts, in a namespace of this process's own. Writable binds first: a bind copies the
# read-only flag of the mount it is made from.
mounts=""
for path in $read_write ${runtime_dir:+/run/$runtime_dir}; do
    path=${path#-}
    mounts="$mounts mount --bind '$path' '$path';"
done
if [ "$(setting PrivateTmp)" = yes ]; then
    mounts="$mounts mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp;"
    mounts="$mounts mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp;"
fi
if [ "$(setting ProtectHome)" = yes ]; then
    for home in /home /root /run/user; do
        [ -d "$home" ] && mounts="$mounts mount -t tmpfs -o ro,mode=0 tmpfs '$home';"
    done
fi
if [ "$(setting ProtectSystem)" = strict ]; then
    mounts="$mounts mount -o remount,bind,ro /;"
fi

syscall_filter=$(setting SystemCallFilter)
syscall_errno=$(setting SystemCallErrorNumber)

# What runs the command: the capabilities and no_new_privs, then the system call filter (after
# setpriv, whose own calls it could refuse), then systemd's clean environment.
launcher=(setpriv "${setpriv_args[@]}")
if [ -n "$syscall_filter" ]; then
    launcher+=(/usr/bin/python3 -c "$(cat "$(dirname "$0")/seccomp_exec.py")"
        "${syscall_errno:-kill}" "$syscall_filter" --)
fi
launcher+=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    NOTIFY_SOCKET="$notify_socket" WATCHDOG_USEC="$watchdog_usec"
    ${runtime_dir:+RUNTIME_DIRECTORY=/run/$runtime_dir})

cd /
umask "${umask_value:-0022}"
# In the new mount namespace: the mounts, ExecStartPre= (its failure is the unit's), then
# ExecStart= as this very process, which WATCHDOG_PID names.
inner='
set -e
eval "$1"
pre=$2 start=$3
shift 3
if [ -n "$pre" ]; then "$@" $pre >&2 || exit 1; fi
exec "$@" WATCHDOG_PID=$$ $start
'
exec unshare --mount --propagation private /bin/bash -c "$inner" bash \
    "set -e; $mounts" "$exec_start_pre" "$exec_start" "${launcher[@]}"
