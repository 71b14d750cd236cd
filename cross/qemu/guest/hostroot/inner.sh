#!/bin/bash
# Runs in the hostroot.sh guest as PID 1, on the host's userspace: makes
# the guest's own /tmp, /run, /dev/pts, /dev/shm and cgroup2 mounts, brings
# up lo, runs /hostroot-out/cmd (written by hostroot.sh: the environment,
# the working directory and the command), keeps its exit status in
# /hostroot-out/rc and powers off.
out=/hostroot-out
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname hostroot
ip link set lo up
echo "HOSTROOT: running" > /dev/console
bash "$out/cmd" > "$out/stdout" 2> "$out/stderr" < /dev/null
echo $? > "$out/rc"
sync
echo "HOSTROOT: done rc=$(cat "$out/rc")" > /dev/console
echo o > /proc/sysrq-trigger
sleep 10
