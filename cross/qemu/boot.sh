#!/bin/bash
# cross/qemu/boot.sh ARCH [--timeout SECONDS] [--log FILE] [--stop term|poweroff]
#
# Boots Debian's kernel for ARCH under QEMU with the husk initramfs
# (initramfs.sh), lets husk-init run the test services in appliance mode,
# and checks the serial console log (check.sh). Prints one verdict line
# `HUSK-QEMU arch=ARCH ok|FAIL ...`; exit 0 when every check passed, 1 on a
# failure (a timeout included: QEMU is killed), 77 when the machine cannot
# boot guests (no qemu-system, no kernel, no dist/ binaries).
# HUSK_QEMU_PULLED=DIR adds the `pulled` container service, whose rootfs is
# DIR (an image `husk-rootfs pull` fetched; tests/tests/pull.rs).
#
# KVM is used only when the guest arch is the host's, the CPU shows vmx/svm
# and /dev/kvm opens; otherwise TCG.
set -euo pipefail
. "$(dirname "$0")/common.sh"
arch=${1:-}; [ $# -ge 1 ] && shift
deb_arch "$arch" >/dev/null
timeout=${QEMU_TIMEOUT:-120}
log=""
stop=""
while [ $# -gt 0 ]; do
    case $1 in
        --timeout) timeout=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --stop) stop=$2; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
case $arch in
    x86_64) qemu=qemu-system-x86_64 pkg=qemu-system-x86 console=ttyS0 stop=${stop:-term} ;;
    aarch64) qemu=qemu-system-aarch64 pkg=qemu-system-arm console=ttyAMA0 stop=${stop:-poweroff} ;;
esac
if ! command -v "$qemu" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "boot.sh: installing $pkg" >&2
        apt_get install -y -qq --no-install-recommends "$pkg" >&2 ||
            { apt_get update -qq >&2 && apt_get install -y -qq --no-install-recommends "$pkg" >&2; } || true
    fi
    command -v "$qemu" >/dev/null || unavailable "$qemu not installed (apt-get install $pkg)"
fi

kdir=$("$QEMU_DIR/kernel.sh" "$arch")
mkdir -p "$CACHE"
initrd=$CACHE/initramfs-$arch.cpio.gz
if [ -n "${HUSK_QEMU_PULLED:-}" ]; then
    # An initramfs of this boot's own (it carries the pulled rootfs).
    initrd=$(mktemp "$CACHE/initramfs-$arch-pulled.XXXXXX.cpio.gz")
    trap 'rm -f "$initrd"' EXIT
fi
KERNEL_DIR=$kdir "$QEMU_DIR/initramfs.sh" "$arch" "$initrd" >&2
[ -n "$log" ] || log=$CACHE/console-$arch.log
: > "$log"

accel=(-accel tcg)
if [ "$arch" = "$(uname -m)" ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel=(-accel kvm -cpu host)
fi
machine=()
case $arch in
    x86_64) machine=(-M pc) ;;
    aarch64) machine=(-M virt -cpu cortex-a57) ;;
esac
# quiet: kernel messages below "error" stay off the console; panics,
# OOM kills and "reboot: Power down" still show. panic=-1 reboots at once
# on a panic and -no-reboot turns that into QEMU's exit.
append="console=$console rdinit=/qemu/stage0 cgroup_no_v1=all quiet panic=-1 husk.stop=$stop"
start=$SECONDS
set +e
timeout -k 5 "$timeout" "$qemu" "${machine[@]}" "${accel[@]}" -m 256 -smp 1 \
    -nodefaults -display none -monitor none -nic none -no-reboot \
    -serial "file:$log" \
    -kernel "$kdir/vmlinuz" -initrd "$initrd" -append "$append" </dev/null
st=$?
set -e
secs=$((SECONDS - start))
"$QEMU_DIR/check.sh" "$arch" "$log" "$st" "$secs" "$timeout"
