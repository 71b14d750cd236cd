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
