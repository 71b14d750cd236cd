#!/bin/bash
# bench/lib/qemu-run.sh ARCH [RUNS] — times `husk run` of /bin/true inside a
# QEMU guest (system emulation: qemu-user cannot run containers, it refuses
# clone() with namespace flags).
#
# Uses the kernel and busybox tree of cross/qemu (kernel.sh; cache
# $HUSK_QEMU_CACHE, default /var/cache/husk-qemu) and dist/ARCH/husk, packs
# its own small initramfs (/bench/stage0 copies it to a tmpfs and
# switch_roots, so husk takes its pivot_root path; then /bench/guest mounts
# cgroup2, makes a busybox bundle with the guest's `husk spec`, runs it once
# to warm up and times ROUNDS loops of RUNS runs with /proc/uptime (10 ms
# ticks, so a loop's mean is good to 10/RUNS ms).
# Prints one markdown table row:
#   | ARCH | accel | ms per run (median of rounds) | min–max | runs |
# Exit 77 (with the reason on stderr) when the machine cannot boot guests.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
arch=${1:?usage: qemu-run.sh x86_64|aarch64 [RUNS]}
RUNS=${2:-20}
ROUNDS=${ROUNDS:-5}
CACHE=${HUSK_QEMU_CACHE:-/var/cache/husk-qemu}
unavail() { echo "qemu-run.sh: unavailable: $*" >&2; exit 77; }
[ -x cross/qemu/kernel.sh ] || unavail "cross/qemu/kernel.sh missing"
case $arch in
x86_64) qemu=qemu-system-x86_64 console=ttyS0 machine=(-M pc) ;;
aarch64) qemu=qemu-system-aarch64 console=ttyAMA0 machine=(-M virt -cpu cortex-a57) ;;
*) echo "qemu-run.sh: unknown arch $arch" >&2; exit 1 ;;
esac
command -v "$qemu" >/dev/null || unavail "$qemu not installed (scripts/setup-host.sh installs qemu-system)"
host=$(uname -m)
rootfs_tool=$REPO/dist/$host/husk-rootfs
[ -x "$REPO/dist/$arch/husk" ] && [ -x "$rootfs_tool" ] || unavail "dist/$arch/husk or dist/$host/husk-rootfs missing (cross/build.sh)"
kdir=$(cross/qemu/kernel.sh "$arch") || unavail "no kernel for $arch (cross/qemu/kernel.sh)"
bb=$CACHE/busybox-$arch
if [ ! -x "$bb/bin/busybox" ]; then
    bb=$(mktemp -d /var/tmp/husk-qemu-bb.XXXXXX)/rootfs
    "$rootfs_tool" busybox "$bb" --arch "$arch" >/dev/null || unavail "husk-rootfs busybox --arch $arch failed"
fi

W=$(mktemp -d /var/tmp/husk-qemu-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
S=$W/stage
mkdir -p "$S"
cp -a "$bb/." "$S/"
install -m 755 "$REPO/dist/$arch/husk" "$S/usr/bin/husk"
mkdir -p "$S/bench/b"
cp -al "$bb" "$S/bench/b/rootfs"
cat >"$S/bench/stage0" <<'EOF'
#!/bin/sh
# pivot_root cannot move the initramfs: copy it into a tmpfs, switch_root.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mkdir -p /newroot
mount -t tmpfs -o mode=0755 rootfs /newroot
for e in /* /.[!.]*; do
    [ -e "$e" ] || continue
    case "$e" in /newroot|/proc|/dev|/sys) mkdir -p "/newroot$e"; continue ;; esac
    cp -a "$e" /newroot/
done
umount /proc
exec switch_root /newroot /bench/guest
EOF
cat >"$S/bench/guest" <<EOF
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
RUNS=$RUNS ROUNDS=$ROUNDS
EOF
cat >>"$S/bench/guest" <<'EOF'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run /tmp
mount -t tmpfs tmpfs /run
out() { echo "HUSK-QEMU-BENCH $*"; }
cd /bench
husk spec --bundle b && sed -i -e 's|"terminal": true|"terminal": false|' -e 's|^\( *\)"sh"$|\1"/bin/true"|' b/config.json
if ! husk run --bundle b warm >/tmp/err 2>&1; then
    out "error=$(head -c 300 /tmp/err | tr '\n' ' ')"
else
    r=0
    while [ $r -lt $ROUNDS ]; do
        read -r t0 _ </proc/uptime
        i=0
        while [ $i -lt $RUNS ]; do husk run --bundle b "c$r-$i" || out "error=run $r $i failed"; i=$((i + 1)); done
        read -r t1 _ </proc/uptime
        out "round=$r runs=$RUNS t0=$t0 t1=$t1"
        r=$((r + 1))
    done
fi
out done
echo o >/proc/sysrq-trigger
poweroff -f
EOF
chmod 755 "$S/bench/stage0" "$S/bench/guest"
# busybox switch_root checks that /init is a regular file (proof of an initramfs).
cp "$S/bench/stage0" "$S/init"
"$rootfs_tool" pack "$S" "$W/initrd.cpio.gz" --mtime 0 >/dev/null

accel=(-accel tcg) accel_name=TCG
if [ "$arch" = "$host" ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel=(-accel kvm -cpu host) accel_name=KVM
fi
set +e
timeout -k 5 "${QEMU_TIMEOUT:-600}" "$qemu" "${machine[@]}" "${accel[@]}" -m 256 -smp 1 \
    -nodefaults -display none -monitor none -nic none -no-reboot -serial "file:$W/console.log" \
    -kernel "$kdir/vmlinuz" -initrd "$W/initrd.cpio.gz" \
    -append "console=$console rdinit=/bench/stage0 cgroup_no_v1=all quiet panic=-1" </dev/null
st=$?
set -e
if ! grep -q '^HUSK-QEMU-BENCH round=' "$W/console.log"; then
    echo "qemu-run.sh: $arch guest gave no timings (qemu status $st); console:" >&2
    cp "$W/console.log" "/var/tmp/husk-qemu-bench-console-$arch.log"
    grep -av "^\\[ *[0-9.]*\\] " "$W/console.log" | tail -8 >&2
    echo "(full console: /var/tmp/husk-qemu-bench-console-$arch.log)" >&2
    exit 1
fi
grep -a '^HUSK-QEMU-BENCH error=' "$W/console.log" | head -3 >&2 || true
tr -d '\r' <"$W/console.log" | sed -n 's/^HUSK-QEMU-BENCH round=.* runs=\([0-9]*\) t0=\([0-9.]*\) t1=\([0-9.]*\)$/\1 \2 \3/p' |
    awk '{ printf "%.3f %d\n", ($3 - $2) * 1000 / $1, $1 }' | sort -n |
    awk -v a="$arch" -v acc="$accel_name" '{ m[NR] = $1; n += $2 }
        END { printf "| %s | %s, 1 vCPU, 256 MiB | %.1f | %.1f–%.1f | %d |\n", a, acc, m[int((NR + 1) / 2)], m[1], m[NR], n }'
