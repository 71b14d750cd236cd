#!/bin/bash
# Command 1 of the README: set up this machine (Debian 12, as root), build
# husk, make a busybox rootfs from Debian's busybox-static, and run a
# container that prints what it sees.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup-host.sh
. ./scripts/env.sh
ARCHES=x86_64 ./cross/build.sh
bin=$PWD/dist/x86_64
demo=/var/tmp/husk-demo
rm -rf "$demo"; mkdir -p "$demo"
"$bin/husk-rootfs" busybox "$demo/rootfs"
"$bin/husk-rootfs" bundle "$demo" --rootfs "$demo/rootfs" -- sh -c '
echo "== I am PID $$ in my own pid namespace:"; ps
echo "== my hostname: $(hostname)"
echo "== my capabilities: $(grep CapEff /proc/self/status)"
echo "== my mounts:"; cat /proc/self/mounts'
echo "== husk run (bundle $demo)"
"$bin/husk" --root /run/husk-demo run --bundle "$demo" "demo-$$"
