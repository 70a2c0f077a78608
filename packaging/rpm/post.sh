# %post for certvisor: the directories (the package owns them with their
# modes; systemd-tmpfiles repairs them if they were changed), then the unit as
# %systemd_post does it: presets decide whether it is enabled, on a first
# installation only.
if [ -x "$(command -v systemd-tmpfiles)" ]; then
    systemd-tmpfiles --create certvisor.conf >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ] && [ -x "$(command -v systemctl)" ]; then
    systemctl --no-reload preset certvisord.service >/dev/null 2>&1 || :
fi
exit 0
