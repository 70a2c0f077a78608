# %postun for certvisor: reload systemd's view of the units; after an upgrade,
# re-execute the agent if it runs (or restart it, %systemd_postun_with_restart). The state in
# /var/lib/certvisor and the logs stay after an erase, as RPM does with data;
# so do the certvisor user and group.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # An upgrade: a running agent executes the new binary in place, its
    # services keeping their pids (certvisord(8), RE-EXECUTION); the unit is
    # restarted only when that did not work.
    if [ "$1" -ge 1 ] && ! certvisorctl daemon-reexec >/dev/null 2>&1; then
        systemctl try-restart certvisord.service >/dev/null 2>&1 || :
    fi
fi
exit 0
