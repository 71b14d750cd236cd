#!/bin/sh
# A long-running container service; says when it is asked to stop.
trap 'echo "HUSK-QEMU-STOP name=app"; exit 0' TERM
echo "HUSK-QEMU-UP name=app"
while :; do sleep 1; done
