#!/bin/bash
# The .rpm: its metadata, contents, modes, config flags and scripts (rpm -qp), then installed
# with its scripts into a scratch root, upgraded there to a rebuilt package that changes
# conffiles the administrator edited, and erased.
#
# Usage: unshare --mount --propagation private check_rpm.sh RPM UPGRADE_RPM WORK_DIR
#   (run.sh does this). The scratch root is WORK_DIR/root: this machine's /usr under an overlay
#   (so that the scripts find sh, getent, useradd, systemd-tmpfiles and systemctl, and what the
#   package installs there lands in the overlay), /etc with copies of the account files and no
#   certvisor account, the rest empty. Nothing outside WORK_DIR changes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rpm_file=$1
upgrade_rpm=$2
work=$3
upgrade_mark="UPGRADE_MARK: changed in the rebuilt package"
mkdir -p "$work"

q() { rpm -qp "$@" "$rpm_file" 2>&1; }

echo "# metadata"
check_eq "name, version, release" "certvisor $(sed -n 's/^project(certvisor VERSION \([0-9.]*\).*/\1/p' "$here/../../CMakeLists.txt") 1" \
    "$(q --qf '%{NAME} %{VERSION} %{RELEASE}')"
requires=$(q --requires)
printf '%s\n' "$requires" | sed 's/^/    requires: /'
check "requires redis >= 7.0 (the shipped redis-db1)" grep -qx 'redis >= 7.0' <<<"$requires"
check "requires(pre) shadow-utils (useradd)" grep -qx 'shadow-utils' <<<"$requires"
check "requires the libraries rpmbuild found (libssl, libconfuse, libevent)" \
    bash -c "grep -q '^libssl.so.3' <<<'$requires' && grep -q '^libconfuse.so' <<<'$requires' &&
             grep -q '^libevent_core' <<<'$requires'"

echo "# contents"
files=$(q -l)
for f in /usr/sbin/certvisord /usr/sbin/certvisorctl /usr/libexec/certvisor/certvisor-syncer \
    /usr/lib/systemd/system/certvisord.service /etc/certvisor/certvisor.conf \
    /etc/certvisor/conf.d/00-certificates.conf /usr/lib/tmpfiles.d/certvisor.conf \
    /usr/lib/sysusers.d/certvisor.conf /usr/share/man/man8/certvisord.8.gz \
    /usr/share/man/man8/certvisorctl.8.gz /usr/share/man/man5/certvisor.conf.5.gz \
    /usr/share/doc/certvisor/operations.md /var/lib/certvisor /var/log/certvisor; do
    check "contains $f" grep -qx "$f" <<<"$files"
done
if [ -d "$here/../../services/cm/www" ]; then
    check "contains the console's files (/usr/share/certvisor/console)" \
        grep -q '^/usr/share/certvisor/console/' <<<"$files"
fi
check "nothing under /lib (the unit is in /usr/lib/systemd/system)" \
    bash -c "! grep '^/lib/' <<<'$files'"
check "no Debian-only files" bash -c "! grep -E 'changelog.Debian|lintian' <<<'$files'"
info=$(q --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} flags=%{FILEFLAGS:fflags} %{FILENAMES}\n]')
# rpmbuild's /usr/lib/.build-id links (binaries by build id) are the package's own, as in Fedora;
# so is /usr/share/certvisor, the console's, checked below.
own_dirs=$(awk '$1 ~ /^d/ && $NF !~ /^\/usr\/(lib\/.build-id|share\/certvisor)/ {print $NF}' <<<"$info" |
    sort | tr '\n' ' ')
check_eq "the directories it owns (no system directory)" \
    "/etc/certvisor /etc/certvisor/conf.d /usr/libexec/certvisor /usr/share/doc/certvisor /var/lib/certvisor /var/log/certvisor " \
    "$own_dirs"
check_eq "/var/lib/certvisor" "drwxr-x--- root:certvisor" "$(awk '$NF == "/var/lib/certvisor" {print $1, $2}' <<<"$info")"
check_eq "/var/log/certvisor" "drwxr-s--- root:adm" "$(awk '$NF == "/var/log/certvisor" {print $1, $2}' <<<"$info")"
check_eq "the binaries" "-rwxr-xr-x root:root" \
    "$(awk '$NF ~ /^\/usr\/(sbin|libexec)\/.*certvisor/ && $1 !~ /^d/ {print $1, $2}' <<<"$info" | sort -u)"
etc_files=$(awk '$1 !~ /^d/ && $NF ~ /^\/etc\// {print $NF}' <<<"$info" | sort)
noreplace=$(awk '$3 ~ /^flags=.*c/ && $3 ~ /^flags=.*n/ {print $NF}' <<<"$info" | sort)
check_eq "%config(noreplace): every file under /etc, and nothing else" "$etc_files" "$noreplace"

echo "# scripts"
scripts=$(q --scripts)
printf '%s\n' "$scripts" | sed 's/^/    /'
for tag in PREIN POSTIN PREUN POSTUN; do
    check "%$tag is valid sh" bash -c "rpm -qp --qf '%{$tag}' '$rpm_file' | sh -n"
done
check "%pre creates the certvisor user and group" \
    bash -c "rpm -qp --qf '%{PREIN}' '$rpm_file' | grep -q 'useradd -r -g certvisor'"
check "%post applies tmpfiles.d and the unit's preset" \
    bash -c "rpm -qp --qf '%{POSTIN}' '$rpm_file' | grep -q 'systemd-tmpfiles --create certvisor.conf' &&
             rpm -qp --qf '%{POSTIN}' '$rpm_file' | grep -q 'preset certvisord.service'"
check "%preun disables and stops the unit on erase" \
    bash -c "rpm -qp --qf '%{PREUN}' '$rpm_file' | grep -q 'disable certvisord.service' &&
             rpm -qp --qf '%{PREUN}' '$rpm_file' | grep -q 'stop certvisord.service'"
check "%postun re-executes a running agent after an upgrade, else restarts the unit" \
    bash -c "rpm -qp --qf '%{POSTUN}' '$rpm_file' | grep -q 'certvisorctl daemon-reexec' &&
             rpm -qp --qf '%{POSTUN}' '$rpm_file' | grep -q 'try-restart certvisord.service'"

echo "# installed into a scratch root"
root=$work/root
rm -rf "$root" "$work/usr-upper" "$work/usr-work"
mkdir -p "$root"/{etc,usr,var/tmp,run,tmp,dev,proc} "$work/usr-upper" "$work/usr-work"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$work/usr-upper,workdir=$work/usr-work" "$root/usr"
for top in bin sbin lib lib32 lib64; do
    if [ -L "/$top" ]; then ln -s "$(readlink "/$top")" "$root/$top"
    elif [ -d "/$top" ]; then mkdir "$root/$top" && mount --bind -o ro "/$top" "$root/$top"; fi
done
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
for f in passwd group shadow gshadow; do
    grep -v '^certvisor:' "/etc/$f" >"$root/etc/$f"
done
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
cp /etc/login.defs /etc/nsswitch.conf "$root/etc/"
rpm --root "$root" --initdb
in_root() { chroot "$root" "$@"; }
install_out=$(rpm --root "$root" --nodeps -i "$rpm_file" 2>&1)
install_status=$?
[ -n "$install_out" ] && printf '%s\n' "$install_out" | sed 's/^/    rpm: /'
check "rpm -i (scripts included) succeeds" test "$install_status" -eq 0
check "no scriptlet failed" bash -c "! grep -qi 'scriptlet failed' <<<'$install_out'"
check_eq "installed" "certvisor-0.1.0-1" "$(rpm --root "$root" -q --qf '%{NAME}-%{VERSION}-%{RELEASE}' certvisor 2>&1)"
check "rpm -V: files, modes, owners and digests as packaged" rpm --root "$root" -V --nodeps certvisor
user_line=$(in_root getent passwd certvisor)
IFS=: read -r _ _ uid _ _ home shell <<<"$user_line"
check "%pre made the system user certvisor" test -n "$user_line" -a "${uid:-1000}" -lt 1000
check_eq "its home and shell" "/var/lib/certvisor /usr/sbin/nologin" "$home $shell"
gid=$(in_root getent group certvisor | cut -d: -f3)
adm=$(in_root getent group adm | cut -d: -f3)
check_eq "/var/lib/certvisor" "750 0:$gid" "$(stat -c '%a %u:%g' "$root/var/lib/certvisor")"
check_eq "/var/log/certvisor" "2750 0:$adm" "$(stat -c '%a %u:%g' "$root/var/log/certvisor")"
check "the unit is in /usr/lib/systemd/system" test -f "$root/usr/lib/systemd/system/certvisord.service"
check "the agent checks its installed configuration" \
    in_root /usr/sbin/certvisord --check -c /etc/certvisor/certvisor.conf

echo "# upgraded in the scratch root, the administrator's edit kept"
echo "# edited by the administrator" >>"$root/etc/certvisor/conf.d/30-cm.conf"
upgrade_out=$(rpm --root "$root" --nodeps -U "$upgrade_rpm" 2>&1)
upgrade_status=$?
[ -n "$upgrade_out" ] && printf '%s\n' "$upgrade_out" | sed 's/^/    rpm: /'
check "rpm -U succeeds" test "$upgrade_status" -eq 0
check_eq "upgraded" "certvisor-0.1.0-2" "$(rpm --root "$root" -q --qf '%{NAME}-%{VERSION}-%{RELEASE}' certvisor 2>&1)"
cm=$root/etc/certvisor/conf.d/30-cm.conf
check "30-cm.conf (edited here, changed in the package): the edit is kept" \
    bash -c "grep -q '^# edited by the administrator' '$cm' && ! grep -q '$upgrade_mark' '$cm'"
check "30-cm.conf.rpmnew holds the package's new version" grep -q "$upgrade_mark" "$cm.rpmnew"
check "20-api.conf (not edited, changed in the package): updated" \
    grep -q "$upgrade_mark" "$root/etc/certvisor/conf.d/20-api.conf"

echo "# erased from the scratch root"
erase_out=$(rpm --root "$root" -e certvisor 2>&1)
erase_status=$?
[ -n "$erase_out" ] && printf '%s\n' "$erase_out" | sed 's/^/    rpm: /'
check "rpm -e succeeds" test "$erase_status" -eq 0
check "not installed" bash -c "! rpm --root '$root' -q certvisor"
check "programs gone" test ! -e "$root/usr/sbin/certvisord" -a ! -e "$root/usr/libexec/certvisor"
check "the edited configuration is saved as .rpmsave" test -f "$cm.rpmsave"
check "the empty state and log directories are gone" \
    test ! -e "$root/var/lib/certvisor" -a ! -e "$root/var/log/certvisor"

summary rpm
