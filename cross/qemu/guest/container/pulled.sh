#!/bin/sh
# Inside the container of the `pulled` service, whose rootfs came from a
# registry (husk-rootfs pull): the image's own busybox runs this; reports
# the image's /etc/motd and the machine.
motd=$(cat /etc/motd 2>/dev/null | tr ' ' _)
rc=1
[ -n "$motd" ] && rc=0
echo "HUSK-QEMU-RESULT name=pulled rc=$rc machine=$(uname -m) motd=${motd:-none}"
