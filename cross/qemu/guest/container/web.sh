#!/bin/sh
# A container service on the guest's CNI bridge: busybox httpd on port 80
# serves /qemu/index.html; says when it is asked to stop.
trap 'kill $h 2>/dev/null; echo "HUSK-QEMU-STOP name=web"; exit 0' TERM
httpd -f -p 80 -h /qemu &
h=$!
echo "HUSK-QEMU-UP name=web $(ip -o -4 addr show eth0 2>/dev/null | awk '{print $4}')"
while :; do sleep 1; done
