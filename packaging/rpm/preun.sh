# %preun for certvisor: on erase (not upgrade), disable the unit and stop the
# agent, which stops its services in order (%systemd_preun).
if [ "$1" -eq 0 ] && [ -x "$(command -v systemctl)" ]; then
    systemctl --no-reload disable certvisord.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop certvisord.service >/dev/null 2>&1 || :
    fi
fi
exit 0
