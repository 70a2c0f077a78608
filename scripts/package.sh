#!/bin/sh
# Builds certvisor's .deb and .rpm: a build of its own without the test hooks, with Debian's
# hardening flags, installed to /usr and /etc as a distribution would, packaged by CPack
# (cmake/Packaging.cmake). Prints the packages' paths last, one a line.
#
# Usage: scripts/package.sh [--release N] [--build-dir DIR] [--output-dir DIR]
#   --release N       the Debian revision and RPM Release (default 1)
#   --build-dir DIR   where to build (default ./build-package)
#   --output-dir DIR  where the packages go (default BUILD_DIR/packages)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
release=1
build=$root/build-package
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --release) release=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --output-dir) out=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$release" in
'' | *[!0-9A-Za-z.+~]*) echo "package.sh: --release '$release': use letters, digits, . + ~" >&2; exit 2 ;;
esac
mkdir -p "$build"
build=$(cd "$build" && pwd)
out=${out:-$build/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)

"$root/scripts/install-deps.sh"

# Debian's build flags with every hardening feature (stack protector, fortify, relro, bind now,
# PIE), from the source root so that -ffile-prefix-map strips it from the binaries.
cd "$root"
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
# Reproducible time stamps (the changelog's date, the archives' mtimes): the last commit's time.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
    export SOURCE_DATE_EPOCH
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTVISOR_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
    -DCERTVISOR_SYSTEMD_UNITDIR=/lib/systemd/system -DCERTVISOR_PACKAGE_RELEASE="$release" \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build "$build" -j"$(nproc)"

# CPack's own staging trees and the previous packages of this build go first, so that nothing
# stale is packaged or listed.
rm -rf "$build/_CPack_Packages" "$out/_CPack_Packages"
rm -f "$out"/certvisor*.deb "$out"/certvisor*.rpm
(cd "$build" && cpack -G "DEB;RPM" -B "$out" >"$build/cpack.log" 2>&1) || {
    cat "$build/cpack.log" >&2
    echo "package.sh: cpack failed (log above, and in $build/cpack.log)" >&2
    exit 1
}
ls "$out"/certvisor*.deb "$out"/certvisor*.rpm
