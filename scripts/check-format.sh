#!/bin/sh
# Fails when a C file differs from what clang-format (with .clang-format) makes of it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
status=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find lib agent tests services -name '*.[ch]'); do
    [ -f "$f" ] || continue # deleted in the work tree, not yet in the index
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then
        echo "check-format: $f is not clang-formatted (run: clang-format -i $f)" >&2
        status=1
    fi
done
exit $status
