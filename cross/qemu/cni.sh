#!/bin/bash
# cross/qemu/cni.sh ARCH — prints a root directory holding Debian's CNI
# plugins for ARCH (usr/lib/cni/) and the C library they link. For the
# host's arch that is / itself; for another arch, `apt-get download
# containernetworking-plugins:DA libc6:DA` (after `dpkg --add-architecture`,
# as kernel.sh does), unpacked with `dpkg -x` into $HUSK_QEMU_CACHE/cni-DA/
# and reused while present.
set -euo pipefail
. "$(dirname "$0")/common.sh"
arch_and_debs "$@"
if [ "$da" = "$host_da" ]; then
    [ -x /usr/lib/cni/bridge ] || unavailable "/usr/lib/cni/bridge is missing (apt-get install containernetworking-plugins)"
    echo /
    exit 0
fi
dir=$CACHE/cni-$da
mkdir -p "$CACHE"
exec 9>"$CACHE/.cni-$da.lock"
flock 9
if [ ! -x "$dir/usr/lib/cni/bridge" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx "$da"; then
        dpkg --add-architecture "$da"
        apt_get update -qq >&2 || true
    fi
    tmp=$(mktemp -d "$CACHE/.cni-tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt's sandbox user must be able to write the download directory.
    chmod 755 "$tmp"; chown _apt "$tmp" 2>/dev/null || true
    get() { (cd "$tmp" && apt-get download -q "containernetworking-plugins:$da" "libc6:$da" >&2); }
    get || { apt_get update -qq >&2 || true; get; } || unavailable "apt-get download containernetworking-plugins:$da libc6:$da failed"
    mkdir -p "$tmp/x"
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
    rm -rf "$dir"
    mv "$tmp/x" "$dir"
fi
echo "$dir"
