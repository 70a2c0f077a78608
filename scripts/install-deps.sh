#!/bin/sh
# Installs what building, running and testing certvisor need, from Debian's packages.
# Safe to run again: it only calls apt-get when something is missing.
set -eu

packages="build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
libssl-dev libconfuse-dev libsystemd-dev libevent-dev libjansson-dev libcmocka-dev
redis-server redis-tools python3 python3-pytest python3-redis supervisor strace procps util-linux openssl
haproxy socat stunnel4 sslscan prometheus curl chromium
dpkg-dev fakeroot lintian rpm systemd python3-seccomp systemd-container debootstrap
etcd-server etcd-client libldap-dev slapd ldap-utils"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian starts redis-server on install where systemd runs; certvisor runs its own shard
# on another port, so that instance does no harm.
apt-get install -y -qq --no-install-recommends $missing >/dev/null
