#!/bin/bash
# Installs what building and testing husk needs on Debian 12 (as root).
# Idempotent and quick when everything is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"
pkgs="busybox-static qemu-user-static"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "setup-host: cargo not found; install Rust with rustup first" >&2
    exit 1
fi
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
