#!/bin/bash
# cross/qemu/initramfs.sh ARCH OUT.cpio.gz — the guest's initramfs, packed
# by husk-rootfs (newc cpio, reproducible):
#   /init               husk-init (PID 1 after /qemu/stage0 moved / to a tmpfs)
#   /usr/bin/husk, /usr/bin/husk-init (and husk-cni)
#   busybox tree        `husk-rootfs busybox --arch ARCH` (guest shell and tools)
#   /etc/husk/services  the test services (cross/qemu/guest/services)
#     limits/, app/,    OCI bundles: rootfs = the busybox tree + guest/container/*
#     web/              (web: on a CNI bridge, when the guest has networking)
#   /usr/lib/cni/, /etc/cni/net.d/  CNI plugins (cni.sh) and the conflist
#   /qemu/              stage0, make-bundles, the cg2 bundle, modules list
#   /lib/modules/VER/   the .ko files of QEMU_MODULES and their dependencies
#                       (loaded by stage0 in the order of /qemu/modules)
# Environment: HUSK_QEMU_DIST (default dist/ARCH: static husk, husk-init),
# HUSK_QEMU_PULLED (a rootfs for the `pulled` service, see boot.sh),
# QEMU_MODULES (default "overlay veth bridge"), KERNEL_DIR (default: kernel.sh ARCH).
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ $# = 2 ] || die "usage: initramfs.sh x86_64|aarch64 OUT.cpio.gz"
arch=$1 out=$2
deb_arch "$arch" >/dev/null
dist=${HUSK_QEMU_DIST:-$REPO/dist/$arch}
host=$(uname -m)
rootfs_tool=${HUSK_ROOTFS:-$REPO/dist/$host/husk-rootfs}
for f in "$dist/husk" "$dist/husk-init" "$rootfs_tool"; do
    [ -x "$f" ] || unavailable "$f is missing: run cross/build.sh first"
done
for f in "$dist/husk" "$dist/husk-init"; do
    if readelf -l "$f" | grep -q 'program interpreter'; then die "$f is not static"; fi
done
modules=${QEMU_MODULES-overlay veth bridge}
kdir=${KERNEL_DIR:-}
if [ -n "$modules" ] && [ -z "$kdir" ]; then
    kdir=$("$QEMU_DIR/kernel.sh" "$arch")
fi

mkdir -p "$CACHE"
bb=$CACHE/busybox-$arch
exec 9>"$CACHE/.busybox-$arch.lock"
flock 9
if [ ! -x "$bb/bin/busybox" ]; then
    rm -rf "$bb"
    "$rootfs_tool" busybox "$bb" --arch "$arch" >&2 || unavailable "husk-rootfs busybox --arch $arch failed"
fi

flock -u 9
stage=$(mktemp -d "$CACHE/.initramfs-$arch.XXXXXX")
trap 'rm -rf "$stage"' EXIT
G=$QEMU_DIR/guest
cp -a "$bb/." "$stage/"
install -m 755 "$dist/husk" "$stage/usr/bin/husk"
install -m 755 "$dist/husk-init" "$stage/usr/bin/husk-init"
ln "$stage/usr/bin/husk-init" "$stage/init"
mkdir -p "$stage/qemu" "$stage/etc/husk"
cp -a "$G/qemu/." "$stage/qemu/"
cp -a "$G/services" "$stage/etc/husk/services"
# Container rootfs: hard links to the busybox tree (one copy in the cpio).
for b in etc/husk/services/limits etc/husk/services/app etc/husk/services/web qemu/cg2; do
    mkdir -p "$stage/$b"
    cp -al "$bb" "$stage/$b/rootfs"
    mkdir -p "$stage/$b/rootfs/qemu"
    cp "$G"/container/* "$stage/$b/rootfs/qemu/"
done
# A rootfs pulled from a registry by the test (HUSK_QEMU_PULLED=DIR): the
# `pulled` container service runs its /bin/sh on guest/container/pulled.sh.
if [ -n "${HUSK_QEMU_PULLED:-}" ]; then
    [ -x "$HUSK_QEMU_PULLED/bin/sh" ] || die "HUSK_QEMU_PULLED=$HUSK_QEMU_PULLED has no /bin/sh"
    b=$stage/etc/husk/services/pulled
    mkdir -p "$b/rootfs"
    cp -a "$HUSK_QEMU_PULLED/." "$b/rootfs/"
    mkdir -p "$b/rootfs/qemu"
    cp "$G/container/pulled.sh" "$b/rootfs/qemu/"
    echo never > "$b/restart"
fi
# Networking: husk-cni, Debian's bridge, host-local and loopback plugins
# for ARCH (cni.sh: the host's, or the foreign arch's packages unpacked)
# with the loader and libraries they link (from readelf: the plugins are
# dynamic Go binaries), and the test's conflist. make-bundles gives the
# `web` service the hooks when husk-cni is there.
plugins="bridge host-local loopback"
why=
[ -x "$dist/husk-cni" ] || why="$dist/husk-cni is missing"
if [ -z "$why" ]; then
    cni_root=$("$QEMU_DIR/cni.sh" "$arch" 2>"$stage/.cni.err") || why="cni.sh: $(tail -1 "$stage/.cni.err")"
    rm -f "$stage/.cni.err"
fi
# lib_in_root NAME: where library NAME is inside $cni_root (the loader's dirs)
lib_in_root() {
    local d
    for d in "/lib/$arch-linux-gnu" "/usr/lib/$arch-linux-gnu" /lib /usr/lib /lib64; do
        [ -e "${cni_root%/}$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}
# Each plugin, its loader and its libraries, as paths inside $cni_root
# (readelf once per plugin); what is missing names itself in $why.
files=()
if [ -z "$why" ]; then
    for p in $plugins; do
        f=${cni_root%/}/usr/lib/cni/$p
        [ -x "$f" ] || { why="$f is missing"; break; }
        files+=("/usr/lib/cni/$p")
        interp=$(readelf -lW "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
        if [ -n "$interp" ]; then
            [ -e "${cni_root%/}$interp" ] || { why="$p's loader $interp is not in $cni_root"; break; }
            files+=("$interp")
        fi
        for lib in $(readelf -dW "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
            l=$(lib_in_root "$lib") || { why="$p's $lib is not in $cni_root"; break 2; }
            files+=("$l")
        done
    done
fi
if [ -z "$why" ]; then
    install -m 755 "$dist/husk-cni" "$stage/usr/bin/husk-cni"
    mkdir -p "$stage/etc/cni/net.d"
    for f in "${files[@]}"; do
        # Copied once, links followed.
        [ -e "$stage$f" ] && continue
        mkdir -p "$stage$(dirname "$f")"
        cp -L "${cni_root%/}$f" "$stage$f"
    done
    cp "$G/net/qemu.conflist" "$stage/etc/cni/net.d/"
else
    echo "initramfs.sh: no networking in the guest: $why" >&2
fi

: > "$stage/qemu/modules"
# shellcheck disable=SC2086 # a list of names
[ -z "$modules" ] || stage_modules "$kdir" "$stage" "$stage/qemu/modules" $modules
mkdir -p "$(dirname "$out")"
"$rootfs_tool" pack "$stage" "$out" --mtime 0
