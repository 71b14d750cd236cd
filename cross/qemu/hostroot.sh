#!/bin/bash
# cross/qemu/hostroot.sh [--timeout SECONDS] [--mem MIB] [--log FILE] -- CMD [ARG...]
#
# Runs CMD as root in a QEMU guest that boots Debian's kernel (kernel.sh)
# on the host's own userspace: the host's / is shared read-only over 9p
# with a tmpfs overlay on top (whatever the guest writes is gone when it
# powers off), under cgroup v2 only (cgroup_no_v1=all: every controller),
# with its own /tmp, /run, /dev/pts and lo. So the engines and runtimes
# installed on the host (containerd, Docker, podman, runc, husk from the
# repo's target/) run on a cgroup v2 machine while the host stays as it is.
# The guest's arch is the host's (KVM when it works, else TCG).
#
# CMD runs in the current directory with the current environment. Its
# stdout and stderr become this script's, and its exit status this
# script's. When the guest does not get to run CMD or the time runs out
# (QEMU is killed): exit 1 with the last console lines. Exit 77 when the
# machine cannot boot guests (no qemu-system, no kernel, no static busybox).
set -euo pipefail
. "$(dirname "$0")/common.sh"
timeout=${QEMU_TIMEOUT:-600}
mem=2048
log=""
while [ $# -gt 0 ]; do
    case $1 in
        --timeout) timeout=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --) shift; break ;;
        *) die "unknown option $1 (usage: hostroot.sh [--timeout S] [--mem MIB] [--log FILE] -- CMD [ARG...])" ;;
    esac
done
[ $# -ge 1 ] || die "usage: hostroot.sh [--timeout S] [--mem MIB] [--log FILE] -- CMD [ARG...]"
[ "$(id -u)" = 0 ] || die "needs root"
arch=$(uname -m)
case $arch in
    x86_64) qemu=qemu-system-x86_64 pkg=qemu-system-x86 machine=(-M pc) console=ttyS0 ;;
    aarch64) qemu=qemu-system-aarch64 pkg=qemu-system-arm machine=(-M virt -cpu max) console=ttyAMA0 ;;
    *) unavailable "no QEMU machine for a $arch host" ;;
esac
command -v "$qemu" >/dev/null || unavailable "$qemu not installed (apt-get install $pkg)"
bb=/bin/busybox
[ -x $bb ] && ! readelf -l $bb 2>/dev/null | grep -q 'program interpreter' ||
    unavailable "no static $bb (apt-get install busybox-static)"
rootfs_tool=${HUSK_ROOTFS:-$REPO/dist/$arch/husk-rootfs}
[ -x "$rootfs_tool" ] || unavailable "$rootfs_tool is missing: run cross/build.sh first"
kdir=$("$QEMU_DIR/kernel.sh" "$arch")
# What the engines' networks need (bridges, veths, iptables-nft's NAT and
# filter rules; crc32c_generic is libcrc32c's soft dependency, which
# depends= does not name); HOSTROOT_MODULES replaces the list.
net_modules="crc32c_generic bridge veth br_netfilter nf_tables nft_compat nft_chain_nat nft_ct nft_masq nf_nat nf_conntrack
    xt_MASQUERADE xt_conntrack xt_comment xt_mark xt_addrtype xt_multiport xt_nat xt_tcpudp ip_tables iptable_nat iptable_filter"

mkdir -p "$CACHE"
run=$(mktemp -d "$CACHE/hostroot.XXXXXX")
qpid=""
# On an early exit: TERM to timeout(1), which passes it on to QEMU (a KILL
# would leave QEMU running without it).
trap '[ -z "$qpid" ] || { kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; }; rm -rf "$run"' EXIT
trap 'exit 130' INT TERM
# The initramfs: busybox, the modules, and guest/hostroot/init.
stage=$run/stage
mkdir -p "$stage/bin"
cp $bb "$stage/bin/busybox"
install -m 755 "$QEMU_DIR/guest/hostroot/init" "$stage/init"
: >"$stage/modules"
# shellcheck disable=SC2086 # a list of names
stage_modules "$kdir" "$stage" "$stage/modules" virtio_pci 9pnet_virtio 9p overlay ${HOSTROOT_MODULES-$net_modules}
"$rootfs_tool" pack "$stage" "$run/initrd.cpio.gz" --mtime 0 >/dev/null
# The run's folder, shared read-write: inner.sh, the command, its output.
out=$run/out
mkdir -p "$out"
install -m 755 "$QEMU_DIR/guest/hostroot/inner.sh" "$out/inner.sh"
{
    echo "# written by hostroot.sh"
    export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)='
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    echo
} >"$out/cmd"

accel=(-accel tcg)
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel=(-accel kvm -cpu host)
fi
smp=$(nproc)
[ "$smp" -le 4 ] || smp=4
[ -n "$log" ] || log=$run/console.log
: >"$log"
set +e
timeout -k 5 "$timeout" "$qemu" "${machine[@]}" "${accel[@]}" -m "$mem" -smp "$smp" \
    -nodefaults -display none -monitor none -nic none -no-reboot \
    -serial "file:$log" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$out,mount_tag=hostroot-out,security_model=none" \
    -kernel "$kdir/vmlinuz" -initrd "$run/initrd.cpio.gz" \
    -append "console=$console rdinit=/init cgroup_no_v1=all quiet panic=-1" </dev/null &
qpid=$!
wait "$qpid"
st=$?
qpid=""
set -e
[ -f "$out/stdout" ] && cat "$out/stdout"
[ -f "$out/stderr" ] && cat "$out/stderr" >&2
if [ -s "$out/rc" ]; then
    exit "$(cat "$out/rc")"
fi
why="the guest did not finish the command"
[ "$st" = 124 ] || [ "$st" = 137 ] && why="timed out after ${timeout}s"
echo "hostroot.sh: $why (qemu exit $st); last console lines:" >&2
tail -n 40 "$log" >&2
exit 1
