#!/bin/bash
# The package checks (CI runs them after the test suite): builds the .deb and .rpm with
# scripts/package.sh, and a rebuilt release 2 whose conf.d/20-api.conf and 30-cm.conf changed,
# then runs check_deb.sh (on this machine: lintian, install, start, upgrade, remove, purge),
# check_rpm.sh (contents and scripts, and a scratch-root install, upgrade and erase) and
# check_systemd.sh (the .deb in a container with systemd as PID 1: the unit's start, restart
# after kill -9 with the services adopted, re-exec, upgrade under clients, stop).
#
# Usage: tests/packaging/run.sh   (as root, no stdin needed; work files in a new /tmp directory,
# or CERTVISOR_PACKAGE_WORK). It installs and purges the certvisor package on this machine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "tests/packaging/run.sh: run as root: it installs, upgrades and purges the package" >&2
    exit 1
fi
work=${CERTVISOR_PACKAGE_WORK:-$(mktemp -d /tmp/certvisor-package-check.XXXXXX)}
mkdir -p "$work"
upgrade_mark="UPGRADE_MARK: changed in the rebuilt package"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
    export SOURCE_DATE_EPOCH
fi

echo "# building release 1 from the tree"
"$root/scripts/package.sh" --build-dir "$work/build-1" --release 1 >"$work/build-1.log" 2>&1 || {
    tail -n 40 "$work/build-1.log"
    echo "packaging: 0 passed, 1 failed"
    exit 1
}
echo "# building release 2 from a copy of the tree with two conf.d files changed"
rm -rf "$work/src-2"
mkdir -p "$work/src-2"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$work/src-2" -xf -
else
    tar -C "$root" --exclude='./build*' --exclude=./local -cf - . | tar -C "$work/src-2" -xf -
fi
for f in 20-api.conf 30-cm.conf; do
    echo "# $upgrade_mark" >>"$work/src-2/conf.d/$f"
done
"$work/src-2/scripts/package.sh" --build-dir "$work/build-2" --release 2 >"$work/build-2.log" 2>&1 || {
    tail -n 40 "$work/build-2.log"
    echo "packaging: 0 passed, 1 failed"
    exit 1
}
deb1=$(ls "$work"/build-1/packages/certvisor_*.deb)
deb2=$(ls "$work"/build-2/packages/certvisor_*.deb)
rpm1=$(ls "$work"/build-1/packages/certvisor-*.rpm)
rpm2=$(ls "$work"/build-2/packages/certvisor-*.rpm)
echo "    $deb1"
echo "    $deb2"
echo "    $rpm1"
echo "    $rpm2"

"$here/check_deb.sh" "$deb1" "$deb2" "$work/deb" </dev/null 2>&1 | tee "$work/deb.out"
unshare --mount --propagation private "$here/check_rpm.sh" "$rpm1" "$rpm2" "$work/rpm" \
    </dev/null 2>&1 | tee "$work/rpm.out"
"$here/check_systemd.sh" "$deb1" "$deb2" "$work/systemd" </dev/null 2>&1 |
    tee "$work/systemd.out"

# One closing line for both.
total_passed=0
total_failed=0
for part in deb rpm systemd; do
    line=$(grep -E "^$part: [0-9]+ passed, [0-9]+ failed$" "$work/$part.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "# $part: no summary (the check stopped early)"
        total_failed=$((total_failed + 1))
        continue
    fi
    set -- $line
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $4))
done
echo "# work files: $work"
echo "packaging: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
