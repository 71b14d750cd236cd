# Sourced by the cross/qemu scripts: paths, arch names, messages.
# HUSK_QEMU_CACHE (default /var/cache/husk-qemu) holds everything downloaded
# or built (kernels, busybox trees, initramfs images); nothing is written
# into the repository.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$QEMU_DIR/../.." && pwd)
CACHE=${HUSK_QEMU_CACHE:-/var/cache/husk-qemu}
# Exit code for "this machine cannot do it" (no qemu, no kernel): callers
# (tests/tests/qemu.rs) turn it into a SKIP with the printed reason.
EX_UNAVAILABLE=77

die() { echo "${0##*/}: $*" >&2; exit 1; }
unavailable() { echo "${0##*/}: unavailable: $*" >&2; exit $EX_UNAVAILABLE; }

# deb_arch ARCH → amd64|arm64
deb_arch() {
    case $1 in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        *) die "unknown arch '$1' (x86_64 or aarch64)" ;;
    esac
}

# arch_and_debs "$@": the scripts that take one ARCH argument. Sets arch,
# da (its Debian name) and host_da (the host's), or exits with the usage
# line or "unavailable" when dpkg is missing (no Debian host).
arch_and_debs() {
    [ $# = 1 ] || die "usage: ${0##*/} x86_64|aarch64"
    arch=$1
    da=$(deb_arch "$arch")
    host_da=$(dpkg --print-architecture 2>/dev/null) || unavailable "dpkg not found (a Debian host is needed to fetch packages)"
}

# apt-get, one at a time among these scripts (two boots in parallel on a
# fresh machine both install or update), waiting for other apt users.
apt_get() {
    mkdir -p "$CACHE"
    DEBIAN_FRONTEND=noninteractive flock "$CACHE/.apt.lock" \
        apt-get -o DPkg::Lock::Timeout=300 "$@"
}

# stage_modules KDIR STAGE LIST MODULE...: puts MODULEs and what they depend
# on into STAGE/lib/modules/VER/, from the kernel kernel.sh unpacked in KDIR
# (the .ko files not yet taken from its .deb are unpacked first), and
# appends their paths inside STAGE to LIST in load order (dependencies
# first, following the index kernel.sh made of each `depends=` field).
stage_modules() {
    local kdir=$1 stage=$2 list=$3 ver m ko t
    shift 3
    ver=$(cat "$kdir/version")
    local -A seen=()
    local kos=() want=()
    add_module() { # NAME (as in depends=: underscores or dashes)
        local m=$1 n line dep
        n=${m//-/_}
        [ -n "${seen[$n]:-}" ] && return 0
        seen[$n]=1
        line=$(grep -E "(^|/)($n|${n//_/-})\.ko:" "$kdir/modules.deps" | head -1) || true
        if [ -z "$line" ]; then
            grep -qE "/($n|${n//_/-})\.ko$" "$kdir/modules.builtin" && return 0
            die "module $m is neither in $kdir/modules.deps nor built in"
        fi
        dep=${line#*:depends=}
        for dep in ${dep//,/ }; do add_module "$dep"; done
        kos+=("${line%%:*}")
    }
    for m in "$@"; do add_module "$m"; done
    exec 8>"$kdir/.modules.lock"
    flock 8
    for ko in "${kos[@]}"; do
        [ -f "$kdir/modules/$ko" ] || want+=("./lib/modules/$ver/$ko")
    done
    if [ ${#want[@]} -gt 0 ]; then
        t=$(mktemp -d "$kdir/.modules-tmp.XXXXXX")
        dpkg-deb --fsys-tarfile "$kdir/linux-image.deb" | tar -x -C "$t" "${want[@]}"
        mkdir -p "$kdir/modules"
        cp -a "$t/lib/modules/$ver/." "$kdir/modules/"
        rm -rf "$t"
    fi
    flock -u 8
    exec 8>&-
    for ko in "${kos[@]}"; do
        mkdir -p "$stage/lib/modules/$ver/$(dirname "$ko")"
        cp "$kdir/modules/$ko" "$stage/lib/modules/$ver/$ko"
        echo "/lib/modules/$ver/$ko" >>"$list"
    done
}
