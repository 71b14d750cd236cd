#!/bin/sh
# Runs inside the `limits` container service (memory.limit 32 MiB,
# pids.limit 16, cgroup namespace: /sys/fs/cgroup is the container's own
# cgroup) and checks that the guest's cgroup v2 enforces both limits.
rc=0
bad() { rc=1; echo "limits: FAIL $*"; }
read -r mem < /sys/fs/cgroup/memory.max
read -r pids < /sys/fs/cgroup/pids.max
[ "$mem" = 33554432 ] || bad "memory.max is $mem"
[ "$pids" = 16 ] || bad "pids.max is $pids"

# Memory: a process growing past 32 MiB (no swap in the guest) is killed
# by the cgroup's OOM killer.
awk 'BEGIN { s = "0123456789abcdef"; while (length(s) < 268435456) s = s s; print "grew to " length(s) }'
hog=$?
oom=0
while read -r k v; do [ "$k" = oom_kill ] && oom=$v; done < /sys/fs/cgroup/memory.events
[ "$hog" = 137 ] || bad "memory hog exited with $hog, not 137 (SIGKILL)"
[ "$oom" -ge 1 ] || bad "memory.events oom_kill is $oom"

# Pids: background sleeps until fork fails. This shell and the subshell
# hold 2 of the 16 pids; from here on only builtins run (no pid left).
( i=0; while [ $i -lt 40 ]; do sleep 300 & i=$((i + 1)); echo $i > /dev/shm/forks; done ) 2>/dev/null
read -r forks < /dev/shm/forks
pmax=0
while read -r k v; do [ "$k" = max ] && pmax=$v; done < /sys/fs/cgroup/pids.events
[ "$forks" -le 14 ] || bad "$forks background processes started under pids.max 16"
[ "$pmax" -ge 1 ] || bad "pids.events max is $pmax"
echo "HUSK-QEMU-RESULT name=limits rc=$rc memory.max=$mem pids.max=$pids hog=$hog oom_kill=$oom forks=$forks pids.events.max=$pmax"
exit $rc
