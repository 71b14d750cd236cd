#!/bin/bash
# cross/qemu/kernel.sh ARCH — fetches Debian's kernel for ARCH (x86_64:
# linux-image-amd64, aarch64: linux-image-arm64 with `dpkg --add-architecture
# arm64`) with `apt-get download`, unpacks it with `dpkg -x` into
# $HUSK_QEMU_CACHE/kernel-<package>/ and prints that directory. It holds
# vmlinuz, config, version, modules.builtin, modules.deps (an index of the
# modules' dependencies) and linux-image.deb (modules are taken from it by
# initramfs.sh). Reused while the metapackage points at the same package.
set -euo pipefail
. "$(dirname "$0")/common.sh"
arch_and_debs "$@"
mkdir -p "$CACHE"
exec 9>"$CACHE/.kernel.lock"
flock 9

qual=""
if [ "$da" != "$host_da" ]; then
    qual=":$da"
    if ! dpkg --print-foreign-architectures | grep -qx "$da"; then
        dpkg --add-architecture "$da"
        apt_get update -qq >&2 || true
    fi
fi
# The metapackage names the current kernel package (linux-image-6.1.0-N-amd64).
resolve() { apt-cache depends "linux-image-$da$qual" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1; }
pkg=$(resolve)
if [ -z "$pkg" ]; then
    apt_get update -qq >&2 || true
    pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
    # Offline: fall back to a kernel already in the cache.
    dir=$(ls -d "$CACHE"/kernel-linux-image-*-"$da" 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$dir" ] && [ -f "$dir/vmlinuz" ] || unavailable "apt knows no linux-image-$da$qual and none is cached in $CACHE"
    echo "$dir"; exit 0
fi
dir=$CACHE/kernel-$pkg
if [ ! -f "$dir/vmlinuz" ]; then
    tmp=$(mktemp -d "$CACHE/.kernel-tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt's sandbox user must be able to write the download directory.
    chmod 755 "$tmp"; chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get download -q "$pkg$qual" >&2) || unavailable "apt-get download $pkg$qual failed"
    deb=$(ls "$tmp"/"$pkg"_*.deb)
    dpkg -x "$deb" "$tmp/x"
    mkdir -p "$tmp/k"
    mv "$tmp"/x/boot/vmlinuz-* "$tmp/k/vmlinuz"
    mv "$tmp"/x/boot/config-* "$tmp/k/config"
    m=$(ls -d "$tmp"/x/lib/modules/*/ | head -1); m=${m%/}
    echo "${m##*/}" > "$tmp/k/version"
    cp "$m/modules.builtin" "$tmp/k/modules.builtin"
    # The .deb has no modules.dep (depmod runs at install time, and kmod
    # may be absent): index each module's `depends=` .modinfo field, as
    # "kernel/…/name.ko:depends=a,b". The unpacked modules (~400 MiB) are
    # dropped; initramfs.sh takes the ones it needs from the kept .deb.
    (cd "$m" && grep -r -a -o -m1 'depends=[a-z0-9_,-]*' --include='*.ko' kernel) > "$tmp/k/modules.deps"
    mv "$deb" "$tmp/k/linux-image.deb"
    rm -rf "$dir"
    mv "$tmp/k" "$dir"
fi
echo "$dir"
