#!/bin/bash
# Installs what building and testing husk needs on Debian 12 (as root).
# Idempotent and quick when everything is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"
pkgs="busybox-static qemu-user-static util-linux procps skopeo zstd"
# real clients (tests/clients): containerd, podman and Docker drive husk like runc
pkgs="$pkgs containerd podman buildah catatonit tini runc docker.io bsdutils"
# QEMU harness (cross/qemu): guests for both arches
pkgs="$pkgs qemu-system-x86 qemu-system-arm"
# husk-rootfs pull tests: a local registry, certificates, htpasswd (bcrypt)
pkgs="$pkgs docker-registry openssl apache2-utils"
# husk-cni tests (tests/tests/network.rs): the CNI plugins it runs, and what
# they and the tests use (iptables for portmap/ipMasq, ip, nsenter)
pkgs="$pkgs containernetworking-plugins iptables iproute2"
# runc's suite (tests/runc-bats): with criu its 8 checkpoint tests run, as in
# runc's own baseline (154 tests), and husk's answer to them is checked
pkgs="$pkgs criu"
pkgs="$pkgs ${HUSK_EXTRA_PKGS:-}"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== apt-get install$missing"
    apt-get update -qq
    # docker.io's postinst would start a host dockerd (docker0, iptables):
    # the client tests start their own. Refuse service starts during the
    # install unless the host has its own policy-rc.d.
    prc=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        prc=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc"
        trap 'rm -f "$prc"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    if [ -n "$prc" ]; then rm -f "$prc"; trap - EXIT; fi
fi
if ! command -v cargo >/dev/null; then
    echo "setup-host: cargo not found; install Rust with rustup first" >&2
    exit 1
fi
installed=$(rustup target list --installed)
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# rust-src lets cross/build.sh rebuild std for size.
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src || true
