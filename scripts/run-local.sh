#!/bin/sh
# Builds certvisor and runs the agent in the foreground with every shipped service, in a
# directory of its own (default: ./local), as the invoking user. Ctrl-C stops it in order.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=$("$root/scripts/build.sh" --run | tail -n 1)
dir=${CERTVISOR_LOCAL_DIR:-$root/local}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cat > "$dir/certvisor.conf" <<CONF
# Written by scripts/run-local.sh: everything under this directory, services as $(id -un).
prefix      = "$dir"
libexec_dir = "$build"
console_dir = "$root/services/cm/www"
include     = "$root/conf.d"
log_target  = "console"
CONF
cat <<MSG
certvisord: state, sockets and logs under $dir
In another shell:  $build/certvisorctl -c $dir/certvisor.conf status
MSG
exec "$build/certvisord" -c "$dir/certvisor.conf"
