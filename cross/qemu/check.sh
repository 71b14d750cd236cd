#!/bin/bash
# cross/qemu/check.sh ARCH LOG QEMU_STATUS SECONDS TIMEOUT — checks a guest's
# console log; prints the failed checks and one verdict line.
set -uo pipefail
arch=$1 log=$2 st=$3 secs=$4 timeout=$5
fails=()
fail() { fails+=("$*"); }
has() { grep -aqF -- "$1" "$log"; }
# line_no TEXT: first line holding TEXT (0 if none)
line_no() { grep -anF -- "$1" "$log" | head -1 | cut -d: -f1 | grep . || echo 0; }

if [ "$st" = 124 ] || [ "$st" = 137 ]; then
    fail "timeout: the guest did not power off within ${timeout}s (QEMU killed)"
elif [ "$st" != 0 ]; then
    fail "qemu exited with status $st"
fi
has "Kernel panic" && fail "kernel panic: $(grep -a -m1 -F 'Kernel panic' "$log")"
has "name=stage0" && fail "stage0: $(grep -a -m1 -F 'name=stage0' "$log")"
for n in limits cgroup2 modules finish; do
    l=$(grep -a -o -m1 "HUSK-QEMU-RESULT name=$n .*" "$log" | tr -d '\r')
    if [ -z "$l" ]; then fail "no result line from $n"
    elif [[ " $l " != *" rc=0 "* ]]; then fail "$n: $l"
    fi
done
# Networking, when the initramfs had it (netcheck is removed otherwise).
if has "netcheck: started"; then
    l=$(grep -a -o -m1 "HUSK-QEMU-RESULT name=net .*" "$log" | tr -d '\r')
    if [ -z "$l" ]; then fail "no result line from netcheck"
    elif [[ " $l " != *" rc=0 "* ]]; then fail "net: $l"
    fi
fi
# The pulled image, when boot.sh was given one.
if has "pulled: started"; then
    l=$(grep -a -o -m1 "HUSK-QEMU-RESULT name=pulled .*" "$log" | tr -d '\r')
    if [ -z "$l" ]; then fail "no result line from pulled"
    elif [[ " $l " != *" rc=0 "* ]]; then fail "pulled: $l"
    fi
fi
# Backoff: three failures of `crash` restart it after 250, 500, 1000 ms.
prev=0
for d in 250 500 1000; do
    n=$(line_no "crash: restarting in $d ms")
    if [ "$n" = 0 ]; then fail "crash was not restarted after $d ms"
    elif [ "$n" -le "$prev" ]; then fail "crash: backoff $d ms out of order"
    fi
    prev=$n
done
# Ordered shutdown: reverse start order (app after second after first).
prev=0
for s in app second first; do
    n=$(line_no "HUSK-QEMU-STOP name=$s")
    if [ "$n" = 0 ]; then fail "service $s did not get SIGTERM at shutdown"
    elif [ "$n" -le "$prev" ]; then fail "service $s stopped out of order"
    fi
    prev=$n
done
# The finish service stopped PID 1 with SIGTERM (husk.stop=term) or busybox
# poweroff, which sends SIGUSR2 (husk.stop=poweroff).
stop=$(grep -a -o -m1 'HUSK-QEMU-RESULT name=finish .*' "$log" | sed -n 's/.* stop=\([a-z]*\).*/\1/p')
case $stop in
    term) has "SIGTERM: stopping all services" || fail "husk-init did not stop the services on SIGTERM" ;;
    poweroff) has "SIGUSR2: stopping all services" || fail "husk-init did not stop the services on poweroff (SIGUSR2)" ;;
esac
has "all services stopped" || fail "husk-init did not report 'all services stopped'"
has "reboot: Power down" || fail "the kernel did not power down"

if [ ${#fails[@]} = 0 ]; then
    echo "HUSK-QEMU arch=$arch ok seconds=$secs"
    exit 0
fi
echo "---- last 40 console lines ($log)"
tail -n 40 "$log"
echo "----"
for f in "${fails[@]}"; do echo "FAIL: $f"; done
echo "HUSK-QEMU arch=$arch FAIL seconds=$secs failures=${#fails[@]}"
exit 1
