# %pre for certvisor: the certvisor system user and group (what sysusers.d's
# certvisor.conf declares), before the files that name them are installed.
getent group certvisor >/dev/null || groupadd -r certvisor
getent passwd certvisor >/dev/null ||
    useradd -r -g certvisor -d /var/lib/certvisor -M -s /usr/sbin/nologin \
        -c "certvisor services" certvisor
# The control socket's group, apart from the group that may read the keys.
getent group certvisor-control >/dev/null || groupadd -r certvisor-control
id -nG certvisor | grep -qw certvisor-control || usermod -a -G certvisor-control certvisor
exit 0
